/**
 * What each connected agent last said about its ready spares (copies of its template a create can
 * take at once; Heartbeat.ready_spares). In memory only: it is at most one heartbeat old, and an
 * agent that reconnects says it again. Placement prefers hosts with a spare left (libs/tenancy).
 */
export class HostSpares {
  private readonly ready = new Map<string, number>();

  /** Records a heartbeat's count; undefined (a runtime without spares) forgets it. */
  set(hostId: string, readySpares: number | undefined): void {
    if (readySpares === undefined) this.ready.delete(hostId);
    else this.ready.set(hostId, readySpares);
  }

  /** The host's last count, or undefined when not known (not connected, docker, older agent). */
  get(hostId: string): number | undefined {
    return this.ready.get(hostId);
  }

  /** The agent's stream ended: what it said no longer holds. */
  forget(hostId: string): void {
    this.ready.delete(hostId);
  }
}
