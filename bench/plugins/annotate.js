// The benchmark's custom plugin: a hook on every event that reads and rewrites the payload
// (as a plugin enriching events for its own receiver would), with no external service.
export default {
  id: 'bench-annotate',
  name: 'Benchmark: annotate every event',
  version: '1.0.0',
  type: 'internal',
  hooks: [
    {
      name: '*',
      priority: 10,
      handler: (event) => ({ ...event, data: { ...event.data, annotated: new Date().toISOString() } }),
    },
  ],
};
