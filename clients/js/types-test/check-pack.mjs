// CI: what `npm pack` would publish from clients/js is exactly the module (the entry
// point authstream.js and the parts it re-exports from), their declarations, the README
// and package.json (which npm always adds).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const expected = [
  'README.md',
  'auth-client.d.ts',
  'auth-client.js',
  'authstream.d.ts',
  'authstream.js',
  'errors.d.ts',
  'errors.js',
  'generation-stream.d.ts',
  'generation-stream.js',
  'package.json',
];
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
  cwd: packageDir,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
});
const [pack] = JSON.parse(out);
const files = pack.files.map((f) => f.path).sort();
assert.deepEqual(files, expected, `npm pack lists ${files.join(', ')}`);

// The manifest points TypeScript and bundlers at the entry point, and only there: the
// parts are the entry's own imports, not entry points of their own.
const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
assert.equal(manifest.types, 'authstream.d.ts');
assert.deepEqual(Object.keys(manifest.exports), ['.'], 'one entry point');
assert.deepEqual(Object.keys(manifest.exports['.']), ['types', 'default'], 'conditional exports, types first');
assert.equal(manifest.exports['.'].types, './authstream.d.ts');
assert.equal(manifest.exports['.'].default, './authstream.js');
assert.equal(manifest.main, 'authstream.js');

// Every part the entry point and its declarations import, directly or through another
// part, ships.
const pending = ['authstream.js', 'authstream.d.ts'];
for (const seen = new Set(); pending.length > 0; ) {
  const file = pending.pop();
  if (seen.has(file)) continue;
  seen.add(file);
  assert.ok(files.includes(file), `${file} is imported but not packed`);
  const text = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
  for (const [, part] of text.matchAll(/ from '\.\/([\w-]+)\.js';/g)) {
    pending.push(file.endsWith('.d.ts') ? `${part}.d.ts` : `${part}.js`);
  }
}
console.log(`npm pack: ${files.join(', ')}`);
