/**
 * What a following coordinator answers itself, from the shared store: reads whose answer is all in
 * the store, and the route and event watches. Everything else goes to the leader: writes (one
 * writer keeps revisions in commit order), agents' streams and enrollment (the leader drives the
 * fleet), router reports and wakes (the leader acts on them), and the reads that show what agents
 * last reported in memory (versions offered, fleet status), which only the leader has.
 */
export const FOLLOWER_OPERATOR_METHODS: readonly string[] = [
  'getTenant',
  'listTenants',
  'getUser',
  'listUsers',
  'getDatabase',
  'listDatabases',
  'listHosts',
  'getHost',
  'getBackup',
  'listBackups',
  'getRestore',
  'listRoutes',
  'listEvents',
  'watchEvents',
];

/** The RouteFeedService methods a follower answers. */
export const FOLLOWER_ROUTE_FEED_METHODS: readonly string[] = ['watchRoutes'];
