/**
 * Whether the fleet runs with TLS between routers and instances (and between a standby and its
 * primary): on unless an operator turned it off, or the coordinator has no fleet CA to issue the
 * instances' certificates (--insecure, or an operator's own PKI). Off is loud: a warning at every
 * start, a line in the fleet status problems and a metric, since tenant data then crosses the
 * network between hosts in plaintext.
 */

/** The fleet's inner TLS, as agents (Welcome) and routers (route feed) are told. */
export interface InstanceTlsSetting {
  readonly on: boolean;
  /** Why it is off ('' when on). */
  readonly offReason: string;
}

/** The setting from the --instance-tls flag and the PKI the coordinator runs with. */
export function instanceTlsSetting(flag: string, pki: 'fleet-ca' | 'own-pki' | 'insecure'): InstanceTlsSetting {
  if (flag === 'off') return { on: false, offReason: 'turned off with --instance-tls off' };
  if (pki === 'insecure') return { on: false, offReason: 'the coordinator runs --insecure (no fleet CA to issue instance certificates)' };
  if (pki === 'own-pki') return { on: false, offReason: 'the coordinator runs with its own PKI (--tls-*): the fleet CA issues no instance certificates' };
  return { on: true, offReason: '' };
}

/** The fleet status line for an off setting (undefined when on). */
export function instanceTlsProblem(setting: InstanceTlsSetting): string | undefined {
  return setting.on
    ? undefined
    : `instance TLS is OFF (${setting.offReason}): tenant traffic between routers and instances, and replication between hosts, crosses the network in plaintext`;
}
