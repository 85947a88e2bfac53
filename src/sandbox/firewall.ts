import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  egressChain,
  egressChainRules,
  hookRules,
  ipv6Rules,
  linkRules,
  staleHostPortRules,
  type EgressPolicy,
} from './egress-rules.js';

const exec = promisify(execFile);

/** Runs iptables with `args` (`-w`: wait for the xtables lock rather than fail). */
export type Iptables = (args: string[], input?: string) => Promise<string>;

export const iptables: Iptables = async (args, input) => {
  if (input === undefined) return (await exec('iptables', ['-w', ...args])).stdout;
  return new Promise((resolve, reject) => {
    const child = execFile('iptables-restore', ['-w', ...args], (error, stdout, stderr) =>
      error ? reject(new Error(stderr.trim() || error.message)) : resolve(stdout),
    );
    child.stdin!.end(input);
  });
};

/** Runs ip6tables with `args`, as {@link iptables} runs iptables (no restore input). */
export const ip6tables: Iptables = async (args) =>
  (await exec('ip6tables', ['-w', ...args])).stdout;

/** Runs ebtables with `args`; its check is spelled `--check` (`-C` changes counters there). */
export const ebtables: Iptables = async (args) =>
  (await exec('ebtables', args[0] === '-C' ? ['--check', ...args.slice(1)] : args)).stdout;

/** Whether `chain` holds the rule `args` (the tool's check, `-C`). */
export const hasRule = (run: Iptables, chain: string, args: string[]) =>
  run(['-C', chain, ...args]).then(
    () => true,
    () => false,
  );

const quote = (arg: string) => (/^[\w.,/:-]+$/.test(arg) ? arg : `"${arg}"`);

/**
 * Installs the egress policy, idempotently: the chain is replaced in one `iptables-restore`
 * transaction (never empty in between), and each hook rule is added only when missing; then
 * the IPv6 and ARP refusals, first in their chains.
 */
export async function installFirewall(
  policy: EgressPolicy,
  run: Iptables = iptables,
  run6: Iptables = ip6tables,
  runLink: Iptables = ebtables,
): Promise<void> {
  const chain = egressChain(policy);
  const rules = egressChainRules(policy).map((args) => `-A ${chain} ${args.map(quote).join(' ')}`);
  await run(['--noflush'], `*filter\n:${chain} - [0:0]\n${rules.join('\n')}\nCOMMIT\n`);
  const hooks = hookRules(policy);
  await removeStaleHostPorts(policy, run);
  if (!(await hasRule(run, 'DOCKER-USER', hooks[0]!.args)))
    await run(['-I', 'DOCKER-USER', '1', ...hooks[0]!.args]);
  // INPUT: insert the refusal first, then the reply rule above it.
  for (const hook of hooks.slice(1).reverse()) {
    if (!(await hasRule(run, hook.chain, hook.args)))
      await run(['-I', hook.chain, '1', ...hook.args]);
  }
  for (const rule of ipv6Rules(policy)) {
    if (!(await hasRule(run6, rule.chain, rule.args)))
      await run6(['-I', rule.chain, '1', ...rule.args]);
  }
  for (const rule of linkRules(policy)) {
    if (!(await hasRule(runLink, rule.chain, rule.args)))
      await runLink(['-I', rule.chain, '1', ...rule.args]);
  }
}

/** What is missing or different from the policy; empty when the firewall is as it should be. */
export async function verifyFirewall(
  policy: EgressPolicy,
  run: Iptables = iptables,
  run6: Iptables = ip6tables,
  runLink: Iptables = ebtables,
): Promise<string[]> {
  const problems: string[] = [];
  const chain = egressChain(policy);
  const expected = egressChainRules(policy).map((args) => `-A ${chain} ${args.join(' ')}`);
  const listed = await run(['-S', chain]).catch(() => '');
  const actual = listed.split('\n').filter((line) => line.startsWith(`-A ${chain} `));
  if (actual.length !== expected.length) {
    problems.push(`chain ${chain} has ${actual.length} rules, expected ${expected.length}`);
  }
  for (const hook of hookRules(policy)) {
    if (!(await hasRule(run, hook.chain, hook.args)))
      problems.push(`${hook.chain} lacks: ${hook.args.join(' ')}`);
  }
  for (const rule of ipv6Rules(policy)) {
    if (!(await hasRule(run6, rule.chain, rule.args)))
      problems.push(`ip6tables ${rule.chain} lacks: ${rule.args.join(' ')}`);
  }
  for (const rule of linkRules(policy)) {
    if (!(await hasRule(runLink, rule.chain, rule.args)))
      problems.push(`ebtables ${rule.chain} lacks: ${rule.args.join(' ')}`);
  }
  return problems;
}

/** Removes Bindery's rules for this bridge: the hooks, the chain, the IPv6 and ARP refusals. */
export async function removeFirewall(
  policy: EgressPolicy,
  run: Iptables = iptables,
  run6: Iptables = ip6tables,
  runLink: Iptables = ebtables,
): Promise<void> {
  for (const hook of hookRules(policy)) {
    while (await hasRule(run, hook.chain, hook.args)) await run(['-D', hook.chain, ...hook.args]);
  }
  await removeStaleHostPorts({ ...policy, hostPorts: [] }, run);
  const chain = egressChain(policy);
  await run(['-F', chain]).catch(() => {});
  await run(['-X', chain]).catch(() => {});
  for (const rule of ipv6Rules(policy)) {
    while (await hasRule(run6, rule.chain, rule.args)) await run6(['-D', rule.chain, ...rule.args]);
  }
  for (const rule of linkRules(policy)) {
    while (await hasRule(runLink, rule.chain, rule.args))
      await runLink(['-D', rule.chain, ...rule.args]);
  }
}

/** Closes the host ports the bridge may open that the policy no longer lists. */
async function removeStaleHostPorts(policy: EgressPolicy, run: Iptables): Promise<void> {
  const listing = await run(['-S', 'INPUT']).catch(() => '');
  for (const args of staleHostPortRules(listing, policy)) {
    await run(['-D', 'INPUT', ...args]).catch(() => {});
  }
}
