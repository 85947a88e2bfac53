import { execFile } from 'node:child_process';
import type { HostCommand } from '../engine/host-tools.js';
import {
  egressChain,
  egressChainRules,
  hookRules,
  ipv6Rules,
  linkRules,
  staleHostPortRules,
  type EgressPolicy,
} from './egress-rules.js';

/** Runs iptables with `args` (`-w`: wait for the xtables lock rather than fail); with `input`, iptables-restore. */
export type Iptables = (args: string[], input?: string) => Promise<string>;

/** The firewall's three tools on one machine. */
export interface FirewallTools {
  run: Iptables;
  run6: Iptables;
  runLink: Iptables;
}

/**
 * iptables, ip6tables and ebtables as `command` runs programs: this host's own, or a Swarm node's
 * through its daemon (engine/host-tools.ts). ebtables spells its check `--check` (`-C` changes
 * counters there).
 */
export function firewallTools(command: HostCommand): FirewallTools {
  return {
    run: (args, input) =>
      input === undefined
        ? command(['iptables', '-w', ...args])
        : command(['iptables-restore', '-w', ...args], input),
    run6: (args) => command(['ip6tables', '-w', ...args]),
    runLink: (args) =>
      command(['ebtables', ...(args[0] === '-C' ? ['--check', ...args.slice(1)] : args)]),
  };
}

/** Runs one of this host's programs; rejects with what it printed on standard error. */
const thisHost: HostCommand = (command, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(command[0]!, command.slice(1), (error, stdout, stderr) =>
      error ? reject(new Error(stderr.trim() || error.message)) : resolve(stdout),
    );
    child.stdin!.end(input);
  });

export const { run: iptables, run6: ip6tables, runLink: ebtables } = firewallTools(thisHost);

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
