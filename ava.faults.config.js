// The fault suite (`npm run test:faults`): kills workers, holders and waiters for real, so it is slower than `npm test`
// and kept out of it. Fault files are named *.fault.ts so `npm test` (test/**/*.test.ts) never picks them up.
export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  files: ['test/faults/**/*.fault.ts'],
  timeout: '600s',
  workerThreads: false,
  // One case at a time: the timings they measure (grant latency after a kill) must not compete with each other.
  concurrency: 1,
};
