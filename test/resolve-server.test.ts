import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevServerUnavailableError, pinnedCliPath, resolveDevServer } from '../lib/testing/index.js';

// Each case builds a fake PATH and cache folder, so resolution is checked with no network and no real server.
function scratch() {
  const root = mkdtempSync(join(tmpdir(), 'resolve-server-'));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  return { root, bin, cache: join(root, 'cache') };
}

function executable(path: string, body = 'exit 0') {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

const quiet = { log: () => {} };

test('TEMPORAL_ADDRESS wins over everything else', async (t) => {
  const { bin, cache } = scratch();
  executable(join(bin, 'temporal'));
  const env = { TEMPORAL_ADDRESS: 'example:7233', PATH: bin, TEMPORAL_COORDINATION_CACHE: cache };
  t.deepEqual(await resolveDevServer({ env, ...quiet }), { kind: 'address', address: 'example:7233' });
});

test('TEMPORAL_CLI_PATH comes next, and must be executable', async (t) => {
  const { root, bin, cache } = scratch();
  const cli = join(root, 'my-temporal');
  executable(cli);
  executable(join(bin, 'temporal'));
  const env = { TEMPORAL_CLI_PATH: cli, PATH: bin, TEMPORAL_COORDINATION_CACHE: cache };
  t.deepEqual(await resolveDevServer({ env, ...quiet }), {
    kind: 'executable',
    path: cli,
    origin: 'TEMPORAL_CLI_PATH',
  });
  await t.throwsAsync(resolveDevServer({ env: { ...env, TEMPORAL_CLI_PATH: join(root, 'missing') }, ...quiet }), {
    instanceOf: DevServerUnavailableError,
    message: /TEMPORAL_CLI_PATH/,
  });
});

test('a temporal executable on PATH comes before the cache', async (t) => {
  const { bin, cache } = scratch();
  executable(join(bin, 'temporal'));
  const env = { PATH: bin, TEMPORAL_COORDINATION_CACHE: cache };
  t.deepEqual(await resolveDevServer({ env, ...quiet }), {
    kind: 'executable',
    path: join(bin, 'temporal'),
    origin: 'PATH',
  });
});

test('the cached pinned build is used when nothing else is given', async (t) => {
  const { bin, cache } = scratch();
  const env = { PATH: bin, TEMPORAL_COORDINATION_CACHE: cache };
  mkdirSync(join(pinnedCliPath(env), '..'), { recursive: true });
  executable(pinnedCliPath(env));
  t.deepEqual(await resolveDevServer({ env, ...quiet }), {
    kind: 'executable',
    path: pinnedCliPath(env),
    origin: 'cache',
  });
});

test('with go on PATH the pinned CLI is built into the cache, and the build is announced', async (t) => {
  const { bin, cache } = scratch();
  // A fake `go` that "installs" into GOBIN and records its arguments and toolchain setting.
  executable(
    join(bin, 'go'),
    `echo "$@ GOTOOLCHAIN=$GOTOOLCHAIN" > "$GOBIN/args"; printf '#!/bin/sh\\n' > "$GOBIN/temporal"; /bin/chmod +x "$GOBIN/temporal"`,
  );
  const env = { PATH: bin, TEMPORAL_COORDINATION_CACHE: cache };
  const messages: string[] = [];
  const source = await resolveDevServer({ env, log: (message) => messages.push(message) });
  t.deepEqual(source, { kind: 'executable', path: pinnedCliPath(env), origin: 'go-build' });
  t.regex(messages.join('\n'), /building the Temporal dev server.*once/);
  t.regex(messages.join('\n'), /built the dev server in \d+ s/);
});

test('a failed go build falls back to the SDK download', async (t) => {
  const { bin, cache } = scratch();
  executable(join(bin, 'go'), 'echo "no network" >&2; exit 1');
  const source = await resolveDevServer({ env: { PATH: bin, TEMPORAL_COORDINATION_CACHE: cache }, ...quiet });
  t.is(source.kind, 'download');
  t.regex(source.kind === 'download' ? source.reasons.join('\n') : '', /Go build failed: .*no network/);
});

test('without go the SDK download is the last resort', async (t) => {
  const { bin, cache } = scratch();
  const source = await resolveDevServer({ env: { PATH: bin, TEMPORAL_COORDINATION_CACHE: cache }, ...quiet });
  t.is(source.kind, 'download');
});

test('when nothing works, one error lists all four fixes', async (t) => {
  const { bin, cache } = scratch();
  const error = await t.throwsAsync(
    resolveDevServer({ env: { PATH: bin, TEMPORAL_COORDINATION_CACHE: cache }, download: false, ...quiet }),
    { instanceOf: DevServerUnavailableError },
  );
  for (const fix of [
    'TEMPORAL_ADDRESS',
    'TEMPORAL_CLI_PATH',
    'go install github.com/temporalio/cli/cmd/temporal@v1.5.1',
    'internet access',
  ]) {
    t.true(error!.message.includes(fix), `mentions ${fix}`);
  }
});
