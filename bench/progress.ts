import type { ProgressReporter } from './scenario.js';

const clearLine = '\r\u001B[K';

/** A single line on stderr, rewritten in place while the bench runs; silent when stderr is not a terminal. */
export class ProgressLine {
  readonly #stream: NodeJS.WriteStream;
  readonly #interactive: boolean;
  readonly #interval: number;
  #lastWrite = Number.NEGATIVE_INFINITY;
  #shown = false;

  constructor(stream: NodeJS.WriteStream = process.stderr, interval = 100) {
    this.#stream = stream;
    this.#interactive = stream.isTTY === true && process.env['CI'] === undefined;
    this.#interval = interval;
  }

  /** Replaces the line, at most once per `interval` ms. */
  update(text: string): void {
    if (!this.#interactive) return;
    const now = performance.now();
    if (now - this.#lastWrite < this.#interval) return;
    this.#lastWrite = now;
    const width = Math.max(20, (this.#stream.columns ?? 80) - 1);
    this.#stream.write(clearLine + (text.length > width ? `${text.slice(0, width - 1)}…` : text));
    this.#shown = true;
  }

  /** Prints a permanent line above the progress line. */
  log(text: string): void {
    this.clear();
    this.#stream.write(`${text}\n`);
  }

  clear(): void {
    if (!this.#shown) return;
    this.#stream.write(clearLine);
    this.#shown = false;
    this.#lastWrite = Number.NEGATIVE_INFINITY;
  }

  /** A reporter that prefixes every line with `[name]`. */
  for(name: string): ProgressReporter {
    return {
      update: (text) => this.update(`[${name}] ${text}`),
      log: (text) => this.log(`[${name}] ${text}`),
    };
  }
}
