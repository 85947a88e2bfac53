import { indexBuildArgs } from '../../src/build/index-access.js';
import { indexForwarderPort, loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { hookRules, staleHostPortRules } from '../../src/sandbox/egress-rules.js';
import { installFirewall } from '../../src/sandbox/firewall.js';

const settings = (overrides: Partial<Parameters<typeof indexBuildArgs>[0]>) => ({
  pipIndexUrl: undefined,
  pipExtraIndexUrl: undefined,
  pipTrustedHost: undefined,
  indexPort: 8586,
  ...overrides,
});

describe('indexBuildArgs', () => {
  test('an index without credentials reaches the build as it is', () => {
    expect(
      indexBuildArgs(
        settings({
          pipIndexUrl: 'http://mirror.internal/simple/',
          pipTrustedHost: 'mirror.internal',
        }),
        8586,
      ),
    ).toEqual({
      PIP_INDEX_URL: 'http://mirror.internal/simple/',
      PIP_TRUSTED_HOST: 'mirror.internal',
    });
  });

  test('an index with credentials reaches the build as the forwarder, without them', () => {
    const args = indexBuildArgs(
      settings({
        pipIndexUrl: 'https://user:tok3n@pkgs.example.org/org/simple/?x=1',
        pipExtraIndexUrl: 'https://pypi.org/simple/',
      }),
      8586,
    );
    expect(args).toEqual({
      PIP_INDEX_URL: 'http://bindery-package-index:8586/0/org/simple/?x=1',
      PIP_EXTRA_INDEX_URL: 'https://pypi.org/simple/',
      PIP_TRUSTED_HOST: 'bindery-package-index',
    });
    expect(JSON.stringify(args)).not.toMatch(/user|tok3n|pkgs\.example/);
  });

  test('the extra index is forwarded on its own path, the trusted hosts kept', () => {
    expect(
      indexBuildArgs(
        settings({
          pipExtraIndexUrl: 'http://u:p@10.0.0.5:8080/simple/',
          pipTrustedHost: '10.0.0.5',
        }),
        9000,
      ),
    ).toEqual({
      PIP_EXTRA_INDEX_URL: 'http://bindery-package-index:9000/1/simple/',
      PIP_TRUSTED_HOST: '10.0.0.5 bindery-package-index',
    });
  });
});

describe('index URLs in the configuration', () => {
  const problem = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    return 'accepted';
  };

  test('credentials in a URL the forwarder cannot fetch are refused at start with a sentence', () => {
    expect(problem({ PIP_INDEX_URL: 'ftp://user:pw@mirror.example.org/simple/' })).toMatch(
      /PIP_INDEX_URL.*has credentials in a ftp: URL; .* speaks http and https only\. Use an https:\/\/ index URL, or one without credentials\./,
    );
    expect(
      problem({ PIP_EXTRA_INDEX_URL: 'https://user:100%@mirror.example.org/simple/' }),
    ).toMatch(
      /PIP_EXTRA_INDEX_URL: has credentials that are not valid percent-escapes; escape a literal % in the user name or password as %25\./,
    );
  });

  test('https with credentials, and any URL without, are accepted', () => {
    expect(problem({ PIP_INDEX_URL: 'https://user:pw@mirror.example.org/simple/' })).toBe(
      'accepted',
    );
    expect(problem({ PIP_EXTRA_INDEX_URL: 'file:///srv/wheels/' })).toBe('accepted');
    expect(loadConfig({}).build.indexPort).toBe(8586);
  });
});

describe('the firewall of the build networks', () => {
  const policy = {
    bridge: 'bindb+',
    ports: [80, 443],
    allowCidrs: [],
    hostAddresses: [],
    resolvers: [],
  };

  test('opens the forwarder port of the host to build bridges, before refusing the rest', () => {
    const input = hookRules({ ...policy, hostPorts: [8586] })
      .filter((rule) => rule.chain === 'INPUT')
      .map((rule) => rule.args.join(' '));
    expect(input).toEqual([
      '-i bindb+ -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-i bindb+ -p tcp -m multiport --dports 8586 -j ACCEPT',
      '-i bindb+ -j REJECT --reject-with icmp-port-unreachable',
    ]);
    expect(hookRules(policy).map((rule) => rule.args.join(' '))).not.toContainEqual(
      expect.stringContaining('--dports'),
    );
  });

  test('a port the policy no longer opens is closed when the firewall is installed or removed', async () => {
    const listing = [
      '-P INPUT ACCEPT',
      '-A INPUT -i bindb+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A INPUT -i bindb+ -p tcp -m multiport --dports 8586 -j ACCEPT',
      '-A INPUT -i bindb+ -p tcp -m multiport --dports 9000 -j ACCEPT',
      '-A INPUT -i bindery0 -p tcp -m multiport --dports 9000 -j ACCEPT',
      '-A INPUT -i bindb+ -j REJECT --reject-with icmp-port-unreachable',
    ].join('\n');
    expect(staleHostPortRules(listing, { ...policy, hostPorts: [8586] })).toEqual([
      '-i bindb+ -p tcp -m multiport --dports 9000 -j ACCEPT'.split(' '),
    ]);
    expect(staleHostPortRules(listing, policy)).toHaveLength(2);

    // Through installFirewall, with iptables stood in for: every check says present.
    const deleted: string[] = [];
    const run = async (args: string[]) => {
      if (args[0] === '-S' && args[1] === 'INPUT') return listing;
      if (args[0] === '-D') deleted.push(args.join(' '));
      return '';
    };
    await installFirewall({ ...policy, hostPorts: [8586] }, run, run, run);
    expect(deleted).toEqual(['-D INPUT -i bindb+ -p tcp -m multiport --dports 9000 -j ACCEPT']);
  });

  test('only while an index has credentials and the port is fixed', () => {
    const build = {
      pipIndexUrl: 'https://mirror.example.org/simple/',
      pipExtraIndexUrl: undefined,
      indexPort: 8586,
    };
    expect(indexForwarderPort(build)).toBeUndefined();
    expect(
      indexForwarderPort({ ...build, pipExtraIndexUrl: 'https://u:p@x.example.org/simple/' }),
    ).toBe(8586);
    expect(
      indexForwarderPort({ ...build, pipIndexUrl: 'https://u:p@x.example.org/', indexPort: 0 }),
    ).toBeUndefined();
  });
});

describe('other download URLs written into build steps', () => {
  test.each(['BINDERY_MICROMAMBA_URL', 'BINDERY_CRAN_MIRROR', 'BINDERY_PYTHON_MIRROR'])(
    '%s with credentials is refused at start with a sentence',
    (name) => {
      expect(() => loadConfig({ [name]: 'https://user:secret@mirror.example.org/x' })).toThrow(
        `${name}: has credentials; ${name} is written into build steps, where the image's history and the public build log show it. Use a mirror that needs none (only PIP_INDEX_URL and PIP_EXTRA_INDEX_URL may carry credentials).`,
      );
      expect(loadConfig({ [name]: 'https://mirror.example.org/x' })).toBeDefined();
    },
  );
});
