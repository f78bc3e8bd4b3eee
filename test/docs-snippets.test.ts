// Every TypeScript code block of README.md and docs/ that imports the package typechecks against the built package, as
// a user's file would: the docs cannot drift from the API. Each block is a module of its own, compiled in one program
// with the repository's compiler options. A block that is a fragment on purpose opens with ```ts no-check.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ensureBuilt } from '../scripts/ensure-built.js';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Where the blocks seem to live: a folder of the package, so 'temporal-coordination' resolves to it by its name. */
const snippetDir = join(root, '.docs-snippets');
const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)(.*)$/;
const IMPORTS_PACKAGE = /(?:from|import)\s*\(?\s*['"]temporal-coordination(?:\/[\w-]+)?['"]/;
const SKIP_MARKER = 'no-check';

interface Snippet {
  /** The markdown file, relative to the repository. */
  readonly file: string;
  /** Line of the opening fence, 1-based. */
  readonly line: number;
  readonly code: string;
  /** The path the compiler sees it at (nothing is written there). */
  readonly path: string;
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => join('docs', file));
  return ['README.md', ...docs.sort()];
}

/** The TypeScript blocks of `file` that import the package and are not marked `no-check`. */
function snippetsOf(file: string): Snippet[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', language = '', meta = ''] = open;
    const start = i;
    const body: string[] = [];
    // The block ends at a fence of the same character at least as long; its lines lose the fence's indentation.
    while (++i < lines.length) {
      const close = FENCE.exec(lines[i]!);
      if (close && close[2]!.startsWith(fence) && close[3] === '' && close[4]!.trim() === '') break;
      body.push(lines[i]!.startsWith(indent) ? lines[i]!.slice(indent.length) : lines[i]!.trimStart());
    }
    const code = body.join('\n');
    if (!['ts', 'typescript'].includes(language) || meta.split(/\s+/).includes(SKIP_MARKER)) continue;
    if (!IMPORTS_PACKAGE.test(code)) continue;
    const name = `${file.split(sep).join('-')}-${start + 1}.ts`;
    snippets.push({ file, line: start + 1, code, path: join(snippetDir, name) });
  }
  return snippets;
}

/** Typechecks every snippet in one program; the diagnostics of each, as `file:line: message` of the markdown. */
function typecheck(snippets: readonly Snippet[]): Map<Snippet, string[]> {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error('tsconfig.json could not be read');
  const options: ts.CompilerOptions = { ...config.options, noEmit: true, declaration: false, sourceMap: false };
  const byPath = new Map(snippets.map((snippet) => [snippet.path, snippet]));
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (path) => byPath.has(path) || fileExists.call(host, path);
  host.readFile = (path) => byPath.get(path)?.code ?? readFile.call(host, path);
  host.getSourceFile = (path, languageVersion, ...rest) => {
    const snippet = byPath.get(path);
    return snippet
      ? ts.createSourceFile(path, snippet.code, languageVersion, true)
      : getSourceFile.call(host, path, languageVersion, ...rest);
  };
  const program = ts.createProgram({ rootNames: [...byPath.keys()], options, host });
  const results = new Map(snippets.map((snippet) => [snippet, [] as string[]]));
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const snippet = diagnostic.file && byPath.get(diagnostic.file.fileName);
    if (!snippet || diagnostic.start === undefined) {
      // A diagnostic outside the blocks (the configuration, the built package) fails every block.
      for (const messages of results.values()) messages.push(`${diagnostic.file?.fileName ?? 'tsconfig'}: ${message}`);
      continue;
    }
    const { line, character } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start);
    // Line 0 of the block is the line after its opening fence.
    results
      .get(snippet)!
      .push(`${snippet.file}:${snippet.line + line + 1}:${character + 1}: TS${diagnostic.code} ${message}`);
  }
  return results;
}

const snippets = markdownFiles().flatMap(snippetsOf);
let diagnostics: Map<Snippet, string[]>;

test.before('the package is built: the blocks import it by name, which resolves to dist/', () => {
  ensureBuilt();
  diagnostics = typecheck(snippets);
});

test('the README has code blocks that import the package, and they are checked', (t) => {
  t.true(
    snippets.some((snippet) => snippet.file === 'README.md'),
    'no ```ts block of README.md imports temporal-coordination',
  );
});

for (const snippet of snippets) {
  test(`the block at ${snippet.file}:${snippet.line} typechecks`, (t) => {
    const messages = diagnostics.get(snippet)!;
    if (messages.length > 0) t.fail(`${snippet.file}:${snippet.line} does not typecheck:\n${messages.join('\n')}`);
    else t.pass();
  });
}
