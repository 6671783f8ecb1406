/**
 * Issue 7: every code block in the docs is type-checked or checked against the project, and every
 * relative link resolves, so the docs cannot rot. The rules for doc writers are in test/docs/README.md;
 * the checker is test/docs/doc-check.ts. One test per page, so a failure names the page; each problem
 * reads `path.md:line:column  message`.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  checkPages,
  documentationPages,
  documentedSources,
  formatProblem,
  type MarkdownPage,
  type Problem,
  repositoryRoot as root,
  tsdocBlocks,
} from './doc-check.js'

const options = (outDir: string) => ({
  root,
  outDir: join(root, 'test/docs/.snippets', outDir),
  tsconfigPath: join(root, 'test/docs/tsconfig.snippets.json'),
  globalsPath: join(root, 'test/docs/snippet-globals.d.ts'),
})

function expectNoProblems(problems: Problem[] | undefined, what: string): void {
  if (!problems) throw new Error(`${what} was not checked`)
  if (problems.length > 0) expect.fail(`${problems.length} problem(s) in ${what}:\n\n${problems.map(formatProblem).join('\n\n')}\n`)
}

// A page that must fail: the checker has to be able to say no. It lives beside the real pages (so its
// relative links resolve the same way) but only in memory.
const sample: MarkdownPage = {
  path: 'docs/__checker-self-test__.md',
  text: [
    '# Self test', //                                                   1
    '', //                                                              2
    '```ts', //                                                         3
    "import { KeyManager } from 'keywarden'", //                        4
    'const fine: KeyManager = keys', //                                 5
    "const broken: number = 'not a number'", //                         6
    '```', //                                                           7
    '', //                                                              8
    '```js title="server.js"', //                                       9
    'const result = await keys.verify(token)', //                      10
    'result.nope()', //                                                11
    '```', //                                                          12
    '', //                                                             13
    'See [the top](#self-test), [the readme](../README.md) and [nowhere](missing-page.md).', // 14
    'And [a bad anchor](#no-such-heading).', //                        15
    '', //                                                             16
    '```json', //                                                      17
    '{ "a": 1, }', //                                                  18
    '```', //                                                          19
    '', //                                                             20
    '```sh', //                                                        21
    'npm install keywarden better-sqlite && npm run tset', //           22
    'npx tsc --noEmit', //                                             23
    '```', //                                                          24
    '', //                                                             25
    '```sql', //                                                       26
    'SELECT * FROM keywarden_keys;', //                                27
    '```', //                                                          28
    '', //                                                             29
    '```', //                                                          30
    'no language', //                                                  31
    '```', //                                                          32
    '', //                                                             33
    '```python', //                                                    34
    'print(1)', //                                                     35
    '```', //                                                          36
    '', //                                                             37
    '```text', //                                                      38
    'output is not checked [x](nowhere.md)', //                        39
    '```', //                                                          40
    '', //                                                             41
    '```typescript', //                                                42
    "import express from 'express'", //                                43
    "import { apiKeyAuth } from 'keywarden/express'", //               44
    "declare const app: import('express').Express", //                 45
    "app.use(express.json(), apiKeyAuth(keys, { scopes: ['data:read'] }))", // 46
    'console.log(keyId, currentUser.tenantId)', //                     47
    '```', //                                                          48
    '', //                                                             49
    '```sh', //                                                        50
    '$ npm ci && npm test -- test/docs # comment: npm run nope', //    51
    'npm install --save-dev @types/express pg@8 ./keywarden-0.1.0.tgz', // 52
    '```', //                                                          53
    '', //                                                             54
    '```sql', //                                                       55
    '-- statements of a shipped migration pass', //                    56
    'create table if not exists "keywarden_keys"(', //                 57
    '  id varchar(256) collate "C" not null primary key,', //          58
    '```', //                                                          59
  ].join('\n'),
}

// A source file that must fail: TSDoc examples are checked like markdown blocks, at the source's lines and
// columns. Only in memory; the template literal (lines 11-15) looks like a comment but is not one.
const sampleSource: MarkdownPage = {
  path: 'src/__checker-self-test__.ts',
  text: [
    '/**', //                                                           1
    ' * A documented constant.', //                                     2
    ' *', //                                                            3
    ' * @example', //                                                   4
    ' * ```ts', //                                                      5
    " * import { KeyManager } from 'keywarden'", //                     6
    ' * const fine: KeyManager = keys', //                              7
    " * const broken: number = 'not a number'", //                     8
    ' * ```', //                                                        9
    ' */', //                                                          10
    'export const notAComment = `/**', //                              11
    ' * ~~~ts', //                                                     12
    " * const hidden: number = 'in a template literal, not a comment'", // 13
    ' * ~~~', //                                                       14
    ' */`', //                                                         15
    'export class Sample {', //                                        16
    '  /**', //                                                        17
    '   * A method.', //                                               18
    '   *', //                                                         19
    '   * @example', //                                                20
    '   * ```js title="client.js"', //                                 21
    '   * const result = await keys.verify(token)', //                 22
    '   * result.nope()', //                                           23
    '   * ```', //                                                     24
    '   *', //                                                         25
    '   * ```', //                                                     26
    '   * an untagged fence', //                                       27
    '   * ```', //                                                     28
    '   * @example Not fenced, so not checked', //                     29
    '   * keys.nope()', //                                             30
    '   * @param none - a ```ts fence only counts at the start of a line', // 31
    '   */', //                                                        32
    '  method(): void {}', //                                          33
    '}', //                                                            34
    'export const after = 1 /** A comment after code on its line is read too.', // 35
    ' * ```typescript', //                                             36
    " * import express from 'express'", //                             37
    " * import { apiKeyAuth } from 'keywarden/express'", //            38
    " * declare const app: import('express').Express", //              39
    " * app.use(express.json(), apiKeyAuth(keys, { scopes: ['data:read'] }))", // 40
    ' * console.log(keyId, currentUser.tenantId, missingName)', //     41
    ' * ```', //                                                       42
    ' */', //                                                          43
    '/**', //                                                          44
    ' * ```ts', //                                                     45
    " * import { keyStatus } from './store.js' // relative: from src/, as for internal helpers", // 46
    " * import { missing } from './no-such-module.js'", //             47
    ' * keyStatus({ revokedAt: null, expiresAt: null, enabled: true }, Date.now())', // 48
    ' * ```', //                                                       49
    ' */', //                                                          50
    'export const last = 2', //                                        51
  ].join('\n'),
}

const pages = documentationPages(root)
const sources = documentedSources(root)
let results: Map<string, Problem[]>

beforeAll(() => {
  const real = pages.map((path) => ({ path, text: readFileSync(join(root, path), 'utf8') }))
  const code = sources.map((path) => ({ path, text: readFileSync(join(root, path), 'utf8') }))
  // One Program for every page, every TSDoc example and the self-test samples: parsing and binding the
  // sources happens once.
  results = checkPages([...real, sample], options('pages'), [...code, sampleSource])
}, 60_000)

describe('documentation checker (self-test)', () => {
  it('reports broken code, links and blocks at their markdown lines', () => {
    const problems = results.get(sample.path)!.map((p) => ({ line: p.line, message: p.message }))
    const at = (line: number, text: string) => expect(problems).toContainEqual({ line, message: expect.stringContaining(text) })
    at(6, "ts block: TS2322: Type 'string' is not assignable to type 'number'")
    at(11, "js block: TS2339: Property 'nope' does not exist")
    at(14, 'link missing-page.md: docs/missing-page.md does not exist')
    at(15, 'link #no-such-heading: no heading in docs/__checker-self-test__.md')
    at(18, 'json block does not parse')
    at(22, 'install of "better-sqlite"')
    at(22, 'npm run tset: package.json has no script "tset"')
    at(27, 'sql statement is not in any shipped migration')
    at(30, 'code block without a language')
    at(34, 'unknown code block language "python"')
    // Exactly those: the ambient names, the keywarden import, good links, npx tsc and text blocks pass.
    expect(problems.map((p) => p.line)).toEqual([6, 11, 14, 15, 18, 22, 22, 27, 30, 34])
  })

  it('reports broken TSDoc examples at their source lines and columns', () => {
    const problems = results.get(sampleSource.path)!.map((p) => ({ line: p.line, column: p.column, message: p.message }))
    const at = (line: number, column: number | undefined, text: string) =>
      expect(problems).toContainEqual({ line, column, message: expect.stringContaining(text) })
    at(8, 10, "ts block: TS2322: Type 'string' is not assignable to type 'number'")
    at(23, 13, "js block: TS2339: Property 'nope' does not exist")
    at(26, undefined, 'code block without a language')
    at(29, undefined, '@example without a ```ts or ```js block')
    at(41, 45, "ts block: TS2304: Cannot find name 'missingName'")
    at(47, 28, "ts block: TS2307: Cannot find module './no-such-module.js'")
    // Exactly those: the template literal is no comment, and the fine lines pass (./store.js resolves).
    expect(problems.map((p) => p.line)).toEqual([8, 23, 26, 29, 41, 47])
  })
})

describe('documentation', () => {
  it('snippet compiler setup (tsconfig.snippets.json, snippet-globals.d.ts)', () => {
    expectNoProblems(results.get(''), 'the snippet compiler setup')
  })

  for (const page of pages) {
    it(page, () => {
      expectNoProblems(results.get(page), page)
    })
  }
})

// The API reference's examples: every fenced block in a TSDoc comment of src/** and adapters/**. One test
// per source file that has any (or an @example); a problem reads `src/file.ts:line:column  message`.
describe('TSDoc examples', () => {
  const documented = sources.filter((path) => {
    const text = readFileSync(join(root, path), 'utf8')
    return text.includes('@example') || tsdocBlocks(path, text).length > 0
  })

  it('finds the examples of the public API', () => {
    expect(documented).toContain('src/key-manager.ts')
    expect(documented).toContain('adapters/memory/index.ts')
  })

  for (const path of documented) {
    it(path, () => {
      expectNoProblems(results.get(path), path)
    })
  }
})
