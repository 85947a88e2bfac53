import type { IndexPackage } from './package-index.js';

/**
 * Made-up packages the tests' package index serves beside its real wheels: small, so a
 * fixture's requirements install in a moment, and unknown to PyPI, so a build that installed
 * them can only have used the index it was given.
 */
export const INDEX_PACKAGES: IndexPackage[] = [
  {
    name: 'bindery-greeting',
    version: '1.0',
    files: { 'bindery_greeting/__init__.py': 'def greet(name):\n    return f"Hello, {name}!"\n' },
  },
  {
    name: 'bindery-hello',
    version: '1.0',
    requires: ['bindery-greeting>=1'],
    files: {
      'bindery_hello/__init__.py':
        'from bindery_greeting import greet\n\n__version__ = "1.0"\nMESSAGE = greet("Bindery")\n',
    },
  },
  {
    name: 'bindery-hello',
    version: '2.0',
    files: { 'bindery_hello/__init__.py': '__version__ = "2.0"\n' },
  },
  {
    name: 'bindery-dev-tools',
    version: '1.0',
    files: { 'bindery_dev_tools/__init__.py': '__version__ = "1.0"\n' },
  },
];
