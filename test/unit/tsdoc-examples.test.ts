// Guards the documentation rule behind the API reference (npm run docs): every export of every public
// subpath has a TSDoc comment with an `@example`, and every member of an exported class or interface has
// a comment of its own. typedoc's `notDocumented` validation checks comments exist; this checks examples.
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))

/** The public subpaths (package.json `exports`) and the file behind each. */
const entryPoints = {
  keywarden: 'src/index.ts',
  'keywarden/adapters/memory': 'adapters/memory/index.ts',
  'keywarden/adapters/redis': 'adapters/redis/index.ts',
  'keywarden/adapters/sql': 'adapters/sql/index.ts',
  'keywarden/express': 'src/http/express.ts',
  'keywarden/koa': 'src/http/koa.ts',
  'keywarden/fastify': 'src/http/fastify.ts',
  'keywarden/hono': 'src/http/hono.ts',
  'keywarden/fetch': 'src/http/fetch.ts',
  'keywarden/testing': 'src/testing/index.ts',
} as const

function loadProgram(): ts.Program {
  const configPath = ts.findConfigFile(root, ts.sys.fileExists, 'tsconfig.json')
  if (!configPath) throw new Error('tsconfig.json not found')
  const { config } = ts.readConfigFile(configPath, ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root)
  return ts.createProgram({
    rootNames: Object.values(entryPoints).map((file) => root + file),
    options: { ...parsed.options, noEmit: true },
  })
}

/** The comment typedoc reads: the last JSDoc block right before the declaration (or its statement). */
function jsDocsOf(node: ts.Node): ts.JSDoc[] {
  // A variable's comment sits on its statement (`/** ... */ export const X = ...`).
  const host = ts.isVariableDeclaration(node) ? node.parent.parent : node
  const docs = ts.getJSDocCommentsAndTags(host).filter(ts.isJSDoc)
  return docs.slice(-1)
}

function hasComment(node: ts.Node): boolean {
  return jsDocsOf(node).some((doc) => {
    const text = typeof doc.comment === 'string' ? doc.comment : (doc.comment ?? []).map((part) => part.text).join('')
    return text.trim() !== '' || (doc.tags?.length ?? 0) > 0
  })
}

function hasExample(node: ts.Node): boolean {
  return jsDocsOf(node).some((doc) => (doc.tags ?? []).some((tag) => tag.tagName.text === 'example'))
}

function isInternal(node: ts.Node): boolean {
  return jsDocsOf(node).some((doc) => (doc.tags ?? []).some((tag) => tag.tagName.text === 'internal'))
}

function isHidden(member: ts.ClassElement | ts.TypeElement): boolean {
  const modifiers = ts.canHaveModifiers(member) ? (ts.getModifiers(member) ?? []) : []
  // Protected members are rendered (typedoc.json keeps them), so they need a comment; private ones are not.
  if (modifiers.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword)) return true
  if (member.name && ts.isPrivateIdentifier(member.name)) return true
  // An index signature or a static block is not a documented member of its own.
  if (ts.isIndexSignatureDeclaration(member) || ts.isClassStaticBlockDeclaration(member)) return true
  return isInternal(member)
}

function memberName(member: ts.ClassElement | ts.TypeElement, file: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(member)) return 'constructor'
  return member.name ? member.name.getText(file) : '(call signature)'
}

/** Names of members documented in the classes and interfaces a declaration extends or implements. */
function documentedInheritedMembers(checker: ts.TypeChecker, declaration: ts.ClassDeclaration | ts.InterfaceDeclaration): Set<string> {
  const names = new Set<string>()
  for (const clause of declaration.heritageClauses ?? []) {
    for (const base of clause.types) {
      for (const property of checker.getTypeAtLocation(base).getProperties()) {
        if ((property.declarations ?? []).some(hasComment)) names.add(property.name)
      }
    }
  }
  return names
}

interface Finding {
  readonly entry: string
  readonly exportName: string
  readonly problem: string
}

function audit(): { findings: Finding[]; checked: Map<string, string[]> } {
  const program = loadProgram()
  const checker = program.getTypeChecker()
  const findings: Finding[] = []
  const checked = new Map<string, string[]>()

  for (const [entry, file] of Object.entries(entryPoints)) {
    const source = program.getSourceFile(root + file)
    if (!source) throw new Error(`${file} is not part of the program`)
    const moduleSymbol = checker.getSymbolAtLocation(source)
    if (!moduleSymbol) throw new Error(`${file} has no module symbol`)
    const names: string[] = []
    checked.set(entry, names)

    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
      const declarations = symbol.declarations ?? []
      names.push(exported.name)
      if (declarations.length === 0) {
        findings.push({ entry, exportName: exported.name, problem: 'no declaration found' })
        continue
      }
      // Overloads: the comment on any one declaration documents the export.
      if (!declarations.some(hasExample)) {
        findings.push({ entry, exportName: exported.name, problem: 'no TSDoc comment with an @example' })
      }
      for (const declaration of declarations) {
        if (!ts.isClassDeclaration(declaration) && !ts.isInterfaceDeclaration(declaration)) continue
        const declarationFile = declaration.getSourceFile()
        const inherited = documentedInheritedMembers(checker, declaration)
        for (const member of declaration.members as ts.NodeArray<ts.ClassElement | ts.TypeElement>) {
          if (isHidden(member)) continue
          // Like typedoc, a member implementing or overriding a documented one inherits its comment.
          if (member.name && inherited.has(member.name.getText(declarationFile))) continue
          // Overloads: one comment on any signature of a method documents all of them.
          if (!hasComment(member)) {
            const name = memberName(member, declarationFile)
            const siblings = (declaration.members as ts.NodeArray<ts.ClassElement | ts.TypeElement>).filter(
              (other) => other !== member && memberName(other, declarationFile) === name,
            )
            if ((ts.isMethodDeclaration(member) || ts.isMethodSignature(member)) && siblings.some(hasComment)) continue
            findings.push({ entry, exportName: `${exported.name}.${name}`, problem: 'member has no TSDoc comment' })
          }
        }
      }
    }
  }
  return { findings, checked }
}

describe('TSDoc on the public API', () => {
  const { findings, checked } = audit()

  it('walks every public subpath and finds its exports', () => {
    for (const entry of Object.keys(entryPoints)) expect(checked.get(entry)?.length, entry).toBeGreaterThan(0)
    expect(checked.get('keywarden')).toContain('KeyManager')
    expect(checked.get('keywarden/adapters/memory')).toContain('MemoryStore')
    expect(checked.get('keywarden/testing')).toContain('describeKeyStore')
  })

  it('has a comment with an @example on every export, and a comment on every class and interface member', () => {
    const report = findings.map((f) => `${f.entry}: ${f.exportName}: ${f.problem}`)
    expect(report).toEqual([])
  })
})
