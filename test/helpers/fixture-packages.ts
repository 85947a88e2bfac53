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
  {
    // A Jupyter server extension that postBuild enables: GET <base>/bindery-extension.
    name: 'bindery-server-extension',
    version: '1.0',
    files: {
      'bindery_server_extension/__init__.py': [
        'from jupyter_server.base.handlers import JupyterHandler',
        'from tornado import web',
        '',
        '',
        'class Hello(JupyterHandler):',
        '    @web.authenticated',
        '    def get(self):',
        '        self.finish("bindery-server-extension is enabled")',
        '',
        '',
        'def _jupyter_server_extension_points():',
        '    return [{"module": "bindery_server_extension"}]',
        '',
        '',
        'def _load_jupyter_server_extension(app):',
        '    route = app.web_app.settings["base_url"] + "bindery-extension"',
        '    app.web_app.add_handlers(".*$", [(route, Hello)])',
        '',
      ].join('\n'),
      // Installed off, as extensions ship their switch (pip's data scheme is sys.prefix):
      // `jupyter server extension enable` only turns on what a config file lists.
      'bindery_server_extension-1.0.data/data/etc/jupyter/jupyter_server_config.d/bindery_server_extension.json':
        '{"ServerApp": {"jpserver_extensions": {"bindery_server_extension": false}}}\n',
    },
  },
];
