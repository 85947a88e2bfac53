import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** BinderHub's metric names, so existing dashboards work against Bindery unchanged. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const buckets = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];
  return {
    registry,
    buildTime: new Histogram({
      name: 'binderhub_build_time_seconds',
      help: 'Histogram of build times',
      labelNames: ['status', 'retries', 'repo'],
      buckets,
      registers: [registry],
    }),
    launchTime: new Histogram({
      name: 'binderhub_launch_time_seconds',
      help: 'Histogram of launch times',
      labelNames: ['status', 'retries', 'repo'],
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    }),
    buildCount: new Counter({
      name: 'binderhub_build_count',
      help: 'Counter of builds by repo',
      labelNames: ['status', 'provider', 'repo'],
      registers: [registry],
    }),
    launchCount: new Counter({
      name: 'binderhub_launch_count',
      help: 'Counter of launches by repo',
      labelNames: ['status', 'provider', 'repo'],
      registers: [registry],
    }),
    inProgressBuilds: new Gauge({
      name: 'binderhub_inprogress_builds',
      help: 'Builds currently in progress',
      registers: [registry],
    }),
    inProgressLaunches: new Gauge({
      name: 'binderhub_inprogress_launches',
      help: 'Launches currently in progress',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
