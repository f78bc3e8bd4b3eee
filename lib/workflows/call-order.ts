// One chain of requests per key, so that the requests one caller makes to one key take effect in call order while
// other keys go on independently. Workflow-safe (no imports): the queue client and `enqueue` in workflow code share it.

export class CallOrder {
  /** Per key: the last request sent or being sent; it never rejects. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `send` once every request made for `key` before it has settled, and resolves or rejects as `send` does. */
  run<T>(key: string, send: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const sent = previous ? previous.then(send) : send();
    const tail = sent.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return sent;
  }
}
