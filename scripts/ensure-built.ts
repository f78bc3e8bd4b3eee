// Builds the package (`npm run build`) when lib/ or the TypeScript configuration changed since dist/ was last written.
// Whatever imports the package by its name (the examples, the README's code blocks) resolves to dist/ through
// package.json's `exports`, so dist/ must be current before they run.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Newest modification time of the file or the files under `path`, in ms (0 if it does not exist). */
function newest(path: string): number {
  try {
    const stat = statSync(path);
    if (!stat.isDirectory()) return stat.mtimeMs;
    return readdirSync(path, { recursive: true, encoding: 'utf8' })
      .map((file) => statSync(join(path, file)).mtimeMs)
      .reduce((a, b) => Math.max(a, b), 0);
  } catch {
    return 0;
  }
}

/** Whether dist/ is older than what it is built from. */
export function isBuildStale(): boolean {
  const sources = ['lib', 'tsconfig.json', 'tsconfig.build.json'].map((path) => newest(join(root, path)));
  return Math.max(...sources) > newest(join(root, 'dist'));
}

/**
 * Runs `npm run build` if dist/ is stale; returns whether it did. Throws with the compiler's output if the build
 * fails. `log` is told before a build starts (it takes seconds).
 */
export function ensureBuilt(log: (message: string) => void = () => {}): boolean {
  if (!isBuildStale()) return false;
  log('Building the package (npm run build)...');
  try {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'pipe', encoding: 'utf8' });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed:\n${stdout}${stderr}`, { cause: error });
  }
  return true;
}
