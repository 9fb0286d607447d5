// The declarations are written by hand: these tests keep them in step with the module.
// authstream.js and authstream.d.ts only re-export; each part (errors, generation-stream,
// auth-client) is declared next to its file. Every value the module exports is declared
// and nothing else is; every public member of every exported class (prototype methods and
// getters, instance fields) is declared, and every declared member exists. (Its types are
// checked by tsc in types-test/.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import * as module from '../authstream.js';

const read = (file) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

/** The files an entry point re-exports from (`export ... from './x.js'`), in order. */
function parts(entry) {
  return [...new Set([...read(entry).matchAll(/^export [^;]*? from '\.\/([\w-]+)\.js';/gm)].map((m) => m[1]))];
}

const entry = read('authstream.d.ts');
const dts = parts('authstream.d.ts').map((part) => read(`${part}.d.ts`)).join('\n');
const source = parts('authstream.js').map((part) => read(`${part}.js`)).join('\n');

/** `export class X ... { body }` blocks of the declarations, by name. */
function declaredClasses() {
  const classes = new Map();
  for (const match of dts.matchAll(/^export class (\w+)[^{]*\{\n([\s\S]*?)^\}/gm)) {
    const members = new Set();
    for (const line of match[2].split('\n')) {
      const member = /^ {2}(?:readonly |get |static )?(\w+)\??[(:<]/.exec(line);
      if (member) members.add(member[1]);
    }
    classes.set(match[1], members);
  }
  return classes;
}

test('the entry points re-export from the same parts', () => {
  assert.deepEqual(parts('authstream.d.ts'), parts('authstream.js'));
  assert.ok(parts('authstream.js').length > 0);
  // Nothing but re-exports in the entry points: the API is declared in the parts.
  for (const file of ['authstream.js', 'authstream.d.ts']) {
    const code = read(file).replace(/^\/\/.*$/gm, '').replace(/^export (?:type )?\{[^}]*\} from '[^']+';$/gm, '');
    assert.equal(code.trim(), '', `${file} only re-exports`);
  }
});

test('the declarations name exactly the values the module exports', () => {
  const declared = [...dts.matchAll(/^export (?:declare )?(?:class|function|const|let) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(declared.sort(), Object.keys(module).sort());
  assert.deepEqual(/^export default/m.test(dts + entry), 'default' in module);
  // The entry's value re-exports (`export { ... }`, not `export type`) are those values.
  const reexported = [...entry.matchAll(/^export \{([^}]*)\} from/gm)].flatMap((m) => m[1].split(',').map((n) => n.trim()));
  assert.deepEqual(reexported.filter(Boolean).sort(), Object.keys(module).sort());
});

test('every type a part declares is re-exported by the entry', () => {
  const declared = [...dts.matchAll(/^export (?:declare )?(?:class|function|type|interface) (\w+)/gm)].map((m) => m[1]);
  const reexported = [...entry.matchAll(/^export (?:type )?\{([^}]*)\} from/gm)].flatMap((m) =>
    m[1].split(',').map((n) => n.trim()).filter(Boolean),
  );
  assert.deepEqual([...new Set(reexported)].sort(), [...new Set(declared)].sort());
});

test('every public member of every exported class is declared, and only those', () => {
  class FakeEventSource {
    static CLOSED = 2;
  }
  const instances = {
    AuthstreamError: new module.AuthstreamError('gave_up', 'gave up'),
    GenerationStream: new module.GenerationStream({
      generationId: 'g-1',
      getAccessToken: () => 't',
      fetch: async () => new Response(null),
      EventSource: FakeEventSource,
    }),
    AuthClient: new module.AuthClient({ fetch: async () => new Response(null) }),
  };
  const classes = declaredClasses();
  assert.deepEqual([...classes.keys()].sort(), Object.keys(instances).sort());
  // Inherited from Error: declared by the DOM / ES lib, not here.
  const fromError = new Set(['message', 'stack', 'cause']);
  for (const [name, instance] of Object.entries(instances)) {
    const runtime = new Set(
      [...Object.getOwnPropertyNames(Object.getPrototypeOf(instance)), ...Object.keys(instance)].filter(
        (key) => !key.startsWith('_') && key !== 'constructor' && !(instance instanceof Error && fromError.has(key)),
      ),
    );
    const declared = new Set([...classes.get(name)].filter((key) => key !== 'constructor' && key !== 'cause'));
    assert.deepEqual([...declared].sort(), [...runtime].sort(), `members of ${name}`);
  }
});

test('the declared option defaults are the module\'s', () => {
  // Each `@default X` in the declarations, next to its option, against the constructors.
  const defaults = [...dts.matchAll(/@default (\S+)\s*\*\/\n\s+(\w+)\?:/g)];
  assert.equal(defaults.length, 10, 'every option with a default says so');
  for (const [, value, option] of defaults) {
    const given = [...source.matchAll(new RegExp(`^ +${option} = ([^,\\n]+),?$|[{ ]${option} = ([^,}]+)[,}]`, 'gm'))];
    assert.ok(given.length > 0, `${option} has a default in the module`);
    for (const match of given) {
      const actual = (match[1] ?? match[2]).trim();
      if (/^[\d_]+$/.test(actual)) assert.equal(Number(actual.replaceAll('_', '')), Number(value), option);
      else assert.ok(actual.startsWith(value), `${option}: declared ${value}, is ${actual}`);
    }
  }
});
