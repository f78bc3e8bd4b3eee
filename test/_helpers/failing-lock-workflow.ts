// A lock workflow whose every workflow task fails (a plain error thrown in workflow code fails the task, not the
// workflow): a run that can make no progress, for `repair lock`.
export function lockWorkflow(): Promise<void> {
  throw new TypeError('test: this lock workflow cannot make progress');
}
