/**
 * Pages of only the keys a principal may see, with a cursor that never points at one it may not.
 * A store cursor names the key it stops at, so a page that ends on a hidden key would hand its ID
 * (another tenant's, for a principal without a tenant; one `can` hides, under a custom policy) to the
 * caller. This reads on until `limit` visible keys are found and then asks for the page again cut
 * right after the last of them, so the cursor stops at a visible key; or it reads to the end (no cursor).
 */
import type { ApiKey, KeyPage } from '../../types.js'

/** One store page from `cursor` (`null`: the first), at most `limit` keys. */
export type PageReader = (cursor: string | null, limit: number) => Promise<KeyPage>

export async function visiblePage(read: PageReader, visible: (key: ApiKey) => Promise<boolean>, limit: number, cursor: string | null): Promise<KeyPage> {
  const shown: ApiKey[] = []
  let from = cursor
  for (;;) {
    const page = await read(from, limit)
    const flags = await Promise.all(page.items.map(visible))
    const before = shown.length
    let last = -1
    for (let index = 0; index < page.items.length && shown.length < limit; index += 1) {
      if (!flags[index]) continue
      shown.push(page.items[index]!)
      last = index
    }
    if (shown.length < limit) {
      if (page.nextCursor === null) return { items: shown, nextCursor: null }
      from = page.nextCursor
      continue
    }
    if (last === page.items.length - 1) return { items: shown, nextCursor: page.nextCursor }
    // Cut the page right after the last key shown, so the cursor stops at it.
    const cut = await read(from, last + 1)
    if (cut.items.at(-1)?.id === shown.at(-1)!.id) return { items: shown, nextCursor: cut.nextCursor }
    // A key was created in this stretch between the two reads: read the stretch again.
    shown.length = before
  }
}
