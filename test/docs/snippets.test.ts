/**
 * Issue 7: every code block in the docs is type-checked or checked against the project, and every
 * relative link resolves, so the docs cannot rot. The rules for doc writers are in test/docs/README.md;
 * the checker is test/docs/doc-check.ts. One test per page, so a failure names the page; each problem
 * reads `path.md:line:column  message`.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkPages, documentationPages, formatProblem, type MarkdownPage, type Problem, repositoryRoot as root } from './doc-check.js'

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

const pages = documentationPages(root)
let results: Map<string, Problem[]>

beforeAll(() => {
  const real = pages.map((path) => ({ path, text: readFileSync(join(root, path), 'utf8') }))
  // One Program for every page and the self-test sample: parsing and binding the sources happens once.
  results = checkPages([...real, sample], options('pages'))
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
