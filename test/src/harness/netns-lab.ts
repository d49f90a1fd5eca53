/**
 * A network namespace per "partitionable" host, for partition scenarios. Nothing may leave the
 * machine: the whole test range 10.231.0.0/16 is blackholed in the root namespace before any
 * traffic, and only the /24 of each lab is connected (a more specific route) through its veth
 * pair. The namespace has no default route, so it can reach its /24 and nothing else.
 *
 *   root ns: 10.231.<n>.1/24 on veth `<id>r`   <——veth——>   lab ns: 10.231.<n>.2/24 on `<id>n`
 *
 * A partition drops (iptables DROP, no RST, no FIN: as a cut cable) the TCP traffic between the
 * namespace and one port of the root side, leaving everything else (clients to instances) as is.
 *
 * `rootNetns` names the root namespace itself (`ip netns attach`), so a host that must stay in the
 * root namespace can still be started the same way and listen on `rootAddress`: the lab namespace
 * reaches that address (its own /24) where it could never reach a root-side 127.x address.
 */
import { execFileSync, spawnSync } from 'node:child_process';

/** The range every lab lives in; blackholed as a whole in the root namespace. */
export const TEST_RANGE = '10.231.0.0/16';

/**
 * Why the machine cannot run namespace tests (undefined: it can). Checked by creating a namespace.
 * `iptables: false` for tests that never cut links (they need only ip netns, veth and a bridge).
 */
export function netnsUnavailable(options: { iptables?: boolean } = {}): string | undefined {
  const probe = `pgs-e2e-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error) return `cannot run ip: ${add.error.message}`;
  if (add.status !== 0) return `ip netns add is not permitted here: ${add.stderr.trim()}`;
  const del = spawnSync('ip', ['netns', 'del', probe], { encoding: 'utf8' });
  if (del.status !== 0) return `ip netns del failed: ${del.stderr.trim()}`;
  if (options.iptables === false) return undefined;
  const ipt = spawnSync('iptables', ['--version'], { encoding: 'utf8' });
  if (ipt.error || ipt.status !== 0) return 'iptables is not available (needed to cut links)';
  return undefined;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** One namespace with its link to the root namespace. */
export interface NetnsLab {
  readonly netns: string;
  /** Root side of the veth (the coordinator can listen here). */
  readonly rootAddress: string;
  /** Inside the namespace (the isolated host's address). */
  readonly nsAddress: string;
  /** The lab's /24 (the namespace's clients, as the isolated host's agent must allow them). */
  readonly cidr: string;
  /** A name for the root namespace (the test's own), for `ip netns exec` of a host that stays there. */
  readonly rootNetns: string;
  /** Drops (on) or lets through again (off) TCP between the namespace and `rootAddress:port`. */
  partition(port: number, on: boolean): void;
  /** Removes the namespace, the veth pair and (if this lab added it) the blackhole route. */
  teardown(): void;
}

function dropRules(lab: { rootAddress: string }, port: number): string[][] {
  return [
    ['OUTPUT', '-p', 'tcp', '-d', lab.rootAddress, '--dport', String(port), '-j', 'DROP'],
    ['INPUT', '-p', 'tcp', '-s', lab.rootAddress, '--sport', String(port), '-j', 'DROP'],
  ];
}

/** Adds the blackhole route of the whole test range unless it is there; true when this call added it. */
function blackholeTestRange(): boolean {
  const had = execFileSync('ip', ['route', 'show', 'type', 'blackhole', TEST_RANGE], { encoding: 'utf8' }).trim() !== '';
  if (!had) ip('route', 'add', 'blackhole', TEST_RANGE);
  return !had;
}

/** Creates lab number `n` (1..254): the blackhole first, then namespace, veth and addresses. */
export function createNetnsLab(n: number): NetnsLab {
  if (!Number.isInteger(n) || n < 1 || n > 254) throw new Error(`lab number ${n} out of 1..254`);
  const tag = `${process.pid.toString(36)}${n.toString(36)}`.slice(-8);
  const netns = `pgs-e2e-${tag}`;
  const rootNetns = `pgs-e2e-${tag}-root`;
  const rootIf = `pe${tag}r`;
  const nsIf = `pe${tag}n`;
  const rootAddress = `10.231.${n}.1`;
  const nsAddress = `10.231.${n}.2`;
  const cidr = `10.231.${n}.0/24`;
  // Before any address of the range exists: whatever in it is not a lab's own /24 goes nowhere.
  const hadBlackhole = !blackholeTestRange();
  const cuts = new Set<number>();
  const teardown = (): void => {
    const errors: string[] = [];
    const run = (args: string[]): void => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      // "Cannot find" / "No such": already gone, which is the state we want.
      if (r.status !== 0 && !/Cannot find|No such|not exist/i.test(r.stderr)) errors.push(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
    };
    // Deleting the namespace deletes its end of the veth, which deletes the pair (and its routes, rules).
    run(['netns', 'del', netns]);
    // Only the name goes: the root namespace lives on (processes are in it).
    run(['netns', 'del', rootNetns]);
    run(['link', 'del', rootIf]);
    if (!hadBlackhole) run(['route', 'del', 'blackhole', TEST_RANGE]);
    if (errors.length > 0) throw new Error(`netns lab teardown: ${errors.join('; ')}`);
  };
  try {
    ip('netns', 'add', netns);
    ip('link', 'add', rootIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', netns);
    ip('addr', 'add', `${rootAddress}/24`, 'dev', rootIf);
    ip('link', 'set', rootIf, 'up');
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'addr', 'add', `${nsAddress}/24`, 'dev', nsIf);
    ip('-n', netns, 'link', 'set', nsIf, 'up');
    ip('netns', 'attach', rootNetns, String(process.pid));
  } catch (err) {
    teardown();
    throw new Error(`cannot create netns lab ${netns}: ${(err as Error & { stderr?: Buffer }).stderr?.toString().trim() ?? (err as Error).message}`, {
      cause: err,
    });
  }
  const lab: NetnsLab = {
    netns,
    rootAddress,
    nsAddress,
    cidr,
    rootNetns,
    partition(port, on) {
      if (on === cuts.has(port)) return;
      for (const rule of dropRules(lab, port))
        execFileSync('ip', ['netns', 'exec', netns, 'iptables', on ? '-A' : '-D', ...rule], { stdio: ['ignore', 'ignore', 'pipe'] });
      if (on) cuts.add(port);
      else cuts.delete(port);
    },
    teardown,
  };
  return lab;
}

/** One machine of a LAN: its namespace and its address on the LAN. */
export interface LanMachine {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
}

/** Machines in their own namespaces on one switch, and the test (the root namespace) on it too. */
export interface NetnsLan {
  /** The LAN's /24: 10.231.<n>.0/24. */
  readonly cidr: string;
  /** The root namespace's address on the LAN (where the test's clients come from): 10.231.<n>.1. */
  readonly rootAddress: string;
  readonly machines: readonly LanMachine[];
  /** The machine called `name`; throws for a name the LAN does not have. */
  machine(name: string): LanMachine;
  /** Removes every namespace (and with them the veths and the switch) and the blackhole route if this LAN added it. */
  teardown(): void;
}

/**
 * A LAN of machines, number `n` (1..254): machine i gets its own namespace and the address
 * 10.231.<n>.<first + i>, all plugged into a bridge that lives in a namespace of its own (the
 * switch), so machines reach each other (and the root namespace, 10.231.<n>.1, reaches them)
 * without forwarding, NAT or firewall rules in the root namespace. As for a lab, the whole test
 * range is blackholed in the root namespace first, and no namespace has a default route.
 *
 *   root ns 10.231.<n>.1 ──veth──┐                 ┌──veth── machine 0: 10.231.<n>.<first>
 *                                └── switch ns: br ┼──veth── machine 1: 10.231.<n>.<first+1> ...
 */
export function createNetnsLan(n: number, names: readonly string[], first = 10): NetnsLan {
  if (!Number.isInteger(n) || n < 1 || n > 254) throw new Error(`LAN number ${n} out of 1..254`);
  if (first < 2 || first + names.length > 254) throw new Error(`${names.length} machines from .${first} do not fit in a /24`);
  const tag = `${process.pid.toString(36)}${n.toString(36)}`.slice(-7);
  const switchNs = `pgs-lan-${tag}-sw`;
  const rootIf = `pl${tag}r`;
  const machines: LanMachine[] = names.map((name, i) => ({ name, netns: `pgs-lan-${tag}-${name}`, address: `10.231.${n}.${first + i}` }));
  const added = blackholeTestRange();
  const teardown = (): void => {
    const errors: string[] = [];
    const run = (args: string[]): void => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0 && !/Cannot find|No such|not exist/i.test(r.stderr)) errors.push(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
    };
    // A namespace takes its ends of the veths with it, which removes the pairs.
    for (const m of machines) run(['netns', 'del', m.netns]);
    run(['netns', 'del', switchNs]);
    run(['link', 'del', rootIf]);
    if (added) run(['route', 'del', 'blackhole', TEST_RANGE]);
    if (errors.length > 0) throw new Error(`netns LAN teardown: ${errors.join('; ')}`);
  };
  try {
    ip('netns', 'add', switchNs);
    ip('-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', switchNs, 'link', 'set', 'br0', 'up');
    const plug = (ifName: string, peerNs: string | undefined, peerIf: string, address: string): void => {
      ip('-n', switchNs, 'link', 'add', ifName, 'type', 'veth', 'peer', 'name', peerIf, ...(peerNs ? ['netns', peerNs] : ['netns', String(process.pid)]));
      ip('-n', switchNs, 'link', 'set', ifName, 'master', 'br0');
      ip('-n', switchNs, 'link', 'set', ifName, 'up');
      const at = peerNs ? ['-n', peerNs] : [];
      ip(...at, 'addr', 'add', `${address}/24`, 'dev', peerIf);
      ip(...at, 'link', 'set', peerIf, 'up');
    };
    plug('root', undefined, rootIf, `10.231.${n}.1`);
    machines.forEach((m, i) => {
      ip('netns', 'add', m.netns);
      ip('-n', m.netns, 'link', 'set', 'lo', 'up');
      plug(`m${i}`, m.netns, 'eth0', m.address);
    });
  } catch (err) {
    teardown();
    throw new Error(`cannot create netns LAN ${n}: ${(err as Error & { stderr?: Buffer }).stderr?.toString().trim() ?? (err as Error).message}`, {
      cause: err,
    });
  }
  return {
    cidr: `10.231.${n}.0/24`,
    rootAddress: `10.231.${n}.1`,
    machines,
    machine(name) {
      const m = machines.find((x) => x.name === name);
      if (!m) throw new Error(`no machine ${name} on the LAN (have ${names.join(', ')})`);
      return m;
    },
    teardown,
  };
}
