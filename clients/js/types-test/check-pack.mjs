// CI: what `npm pack` would publish from clients/js is exactly the module, its
// declarations, the README and package.json (which npm always adds).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const expected = ['README.md', 'authstream.d.ts', 'authstream.js', 'package.json'];
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
  cwd: packageDir,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
});
const [pack] = JSON.parse(out);
const files = pack.files.map((f) => f.path).sort();
assert.deepEqual(files, expected, `npm pack lists ${files.join(', ')}`);

// The manifest points TypeScript and bundlers at those files.
const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
assert.equal(manifest.types, 'authstream.d.ts');
assert.deepEqual(Object.keys(manifest.exports['.']), ['types', 'default'], 'conditional exports, types first');
assert.equal(manifest.exports['.'].types, './authstream.d.ts');
assert.equal(manifest.exports['.'].default, './authstream.js');
console.log(`npm pack: ${files.join(', ')}`);
