/**
 * How many instances each host can hold, from its agent's Hello (Hello.instance_slots: the ports of
 * its range, which an instance keeps while it exists, stopped or suspended too). Memory and CPU
 * do not bound a host's instances once suspended tenants give theirs back, so without this a
 * bin-packed host is handed more instances than it has ports and its creates fail. In memory
 * only: an agent says it on every connect, and a host takes placements only while connected.
 */
export class HostSlots {
  private readonly slots = new Map<string, number>();

  /** Records a Hello's count; 0 (an agent that did not say) forgets it. */
  report(hostId: string, instanceSlots: number): void {
    if (instanceSlots > 0) this.slots.set(hostId, instanceSlots);
    else this.slots.delete(hostId);
  }

  /** The host's most instances, or undefined when not known (no limit). */
  get(hostId: string): number | undefined {
    return this.slots.get(hostId);
  }
}
