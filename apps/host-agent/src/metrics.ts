// The agent's Prometheus metrics: instances by state, how long realizations and health checks take,
// and the coordinator link.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Every metric the agent updates from code (gauges fed at scrape time are registered here too). */
export interface AgentMetrics {
  realizationSeconds: Histogram<'outcome'>;
  healthCheckSeconds: Histogram<'result'>;
  streamConnects: Counter<'result'>;
  desiredSetsIgnored: Counter;
  commands: Counter<'result'>;
}

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Registers the agent's metrics; `view` feeds the gauges at scrape time. */
export function createAgentMetrics(
  registry: Registry,
  view: () => { instancesByState: Record<string, number>; connected: boolean; appliedGeneration: number },
): AgentMetrics {
  new Gauge({
    name: 'pgs_agent_instances',
    help: 'Instances on this host, by observed state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(view().instancesByState)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'pgs_agent_coordinator_connected',
    help: '1 while the agent stream to the coordinator is open',
    registers: [registry],
    collect() {
      this.set(view().connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pgs_agent_applied_generation',
    help: 'Generation of the last desired set applied',
    registers: [registry],
    collect() {
      this.set(view().appliedGeneration);
    },
  });
  return {
    realizationSeconds: new Histogram({
      name: 'pgs_agent_realization_seconds',
      help: 'Time to converge one instance to its desired spec, by outcome',
      labelNames: ['outcome'],
      buckets: BUCKETS,
      registers: [registry],
    }),
    healthCheckSeconds: new Histogram({
      name: 'pgs_agent_health_check_seconds',
      help: 'Time of one instance health check, by result',
      labelNames: ['result'],
      buckets: BUCKETS,
      registers: [registry],
    }),
    streamConnects: new Counter({
      name: 'pgs_agent_stream_connects_total',
      help: 'Attempts to open the agent stream, by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    desiredSetsIgnored: new Counter({
      name: 'pgs_agent_desired_sets_ignored_total',
      help: 'Desired sets ignored because their generation was not newer',
      registers: [registry],
    }),
    commands: new Counter({ name: 'pgs_agent_commands_total', help: 'One-off commands run, by result', labelNames: ['result'], registers: [registry] }),
  };
}
