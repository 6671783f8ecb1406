/**
 * A TCP proxy for fault injection: it sits between a client and a real server and, on command, passes
 * traffic, cuts the link, stalls it, holds only the replies, or resets it with RSTs. No storage is
 * mocked: every byte that gets through reaches the real server.
 */
import { EventEmitter, once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

/**
 * What the proxy does now:
 * - `pass`: forwards both directions.
 * - `cut`: every connection was closed (FIN) and the port refuses new ones (`ECONNREFUSED`).
 * - `stall`: connections are accepted and kept, nothing is forwarded either way; the bytes are held.
 * - `hold-replies`: requests reach the server, its replies are held: the "committed, answer lost" fault.
 * - `reset`: every connection was reset (RST); new ones are accepted and reset at once.
 */
export type ProxyMode = 'pass' | 'cut' | 'stall' | 'hold-replies' | 'reset'

/** Which way a chunk travels: `request` is client to server, `reply` server to client. */
export type ProxyDirection = 'request' | 'reply'

/** One chunk seen by the proxy; `held` says whether it was kept back instead of forwarded. */
export interface ProxyChunk {
  readonly direction: ProxyDirection
  readonly chunk: Buffer
  readonly held: boolean
}

interface Link {
  readonly client: Socket
  readonly server: Socket
  readonly held: Record<ProxyDirection, Buffer[]>
  /** The sending side ended while its bytes were held: end the receiving side after the flush. */
  readonly endAfterFlush: Record<ProxyDirection, boolean>
}

/**
 * A fault-injecting TCP proxy in front of one server. Listens on `127.0.0.1` on a random port; point
 * the client at {@link TcpProxy.port}. Held bytes are delivered, in order, by {@link TcpProxy.restore}
 * (like a network that heals) and dropped by {@link TcpProxy.cut} or {@link TcpProxy.reset} (like
 * connections that die). Events: `chunk` ({@link ProxyChunk}, emitted synchronously before the chunk is
 * routed, so a listener may change the mode for that very chunk), `held` (a {@link ProxyChunk} kept back)
 * and `connection` (a client connected).
 *
 * @example
 * ```ts
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 6379 })
 * const client = new Redis({ host: '127.0.0.1', port: proxy.port, enableOfflineQueue: false, commandTimeout: 500 })
 * proxy.holdReplies()                              // the next command runs on the server...
 * const pending = client.set('k', 'v').catch((error: unknown) => error)
 * await proxy.nextHeld('reply')                    // ...its answer has reached the proxy...
 * proxy.reset()                                    // ...and is lost with an RST
 * console.log(await pending)                       // an error, although the write happened
 * await proxy.restore()
 * await proxy.close()
 * ```
 */
export class TcpProxy extends EventEmitter {
  /** The port clients connect to (stays the same across {@link TcpProxy.cut} and {@link TcpProxy.restore}). */
  readonly port: number

  private listener: Server | null
  private currentMode: ProxyMode = 'pass'
  private readonly links = new Set<Link>()

  private constructor(
    private readonly target: { readonly host: string; readonly port: number },
    listener: Server,
  ) {
    super()
    this.listener = listener
    this.port = (listener.address() as AddressInfo).port
  }

  /** Starts a proxy in `pass` mode in front of `target`. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const listener = createServer()
    listener.listen(0, '127.0.0.1')
    await once(listener, 'listening')
    const proxy = new TcpProxy({ host: target.host, port: target.port }, listener)
    listener.on('connection', (socket) => proxy.accept(socket))
    return proxy
  }

  /** The current mode. */
  get mode(): ProxyMode {
    return this.currentMode
  }

  /** Client connections open through the proxy right now. */
  get connections(): number {
    return this.links.size
  }

  /** Bytes held back right now, both directions, all connections. */
  get heldBytes(): number {
    let total = 0
    for (const link of this.links) for (const chunk of [...link.held.request, ...link.held.reply]) total += chunk.length
    return total
  }

  /** Closes every connection (FIN both ways, held bytes dropped) and stops listening: new connections are refused. */
  cut(): void {
    this.currentMode = 'cut'
    this.listener?.close()
    this.listener = null
    for (const link of [...this.links]) this.drop(link, (socket) => socket.destroy())
  }

  /** Keeps every connection, old and new, open but forwards nothing in either direction until {@link TcpProxy.restore}. */
  stall(): void {
    this.ensureOpen('stall')
  }

  /** Forwards requests but holds every reply until {@link TcpProxy.restore} (or drops them on cut or reset). */
  holdReplies(): void {
    this.ensureOpen('hold-replies')
  }

  /** Resets every connection with an RST (held bytes dropped); new connections are reset as they arrive. */
  reset(): void {
    this.ensureOpen('reset')
    for (const link of [...this.links]) this.drop(link, resetSocket)
  }

  /** Back to `pass`: listens again after a cut and delivers, in order, whatever stalled connections held. */
  async restore(): Promise<void> {
    if (this.listener === null) {
      const listener = createServer((socket) => this.accept(socket))
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject)
        listener.listen(this.port, '127.0.0.1', () => {
          listener.off('error', reject)
          resolve()
        })
      })
      this.listener = listener
    }
    this.currentMode = 'pass'
    for (const link of this.links) {
      this.flush(link, 'request')
      this.flush(link, 'reply')
    }
  }

  /** Resolves with the next chunk the proxy holds back (in `direction`, if given). */
  nextHeld(direction?: ProxyDirection): Promise<ProxyChunk> {
    return new Promise((resolve) => {
      const listener = (held: ProxyChunk) => {
        if (direction !== undefined && held.direction !== direction) return
        this.off('held', listener)
        resolve(held)
      }
      this.on('held', listener)
    })
  }

  /** Closes every connection and the listener. */
  async close(): Promise<void> {
    this.currentMode = 'cut'
    for (const link of [...this.links]) this.drop(link, (socket) => socket.destroy())
    const listener = this.listener
    this.listener = null
    if (listener !== null) await new Promise<void>((resolve) => listener.close(() => resolve()))
    this.removeAllListeners()
  }

  private ensureOpen(mode: Exclude<ProxyMode, 'cut' | 'pass'>): void {
    if (this.listener === null) throw new Error(`restore() the proxy after a cut before switching to ${mode}`)
    this.currentMode = mode
  }

  private accept(client: Socket): void {
    // Errors (ECONNRESET, EPIPE, a refused upstream) end the link; the close handler cleans up.
    client.on('error', () => undefined)
    if (this.currentMode === 'reset' || this.currentMode === 'cut') {
      resetSocket(client)
      return
    }
    const server = connect(this.target.port, this.target.host)
    const link: Link = { client, server, held: { request: [], reply: [] }, endAfterFlush: { request: false, reply: false } }
    this.links.add(link)
    server.on('error', () => undefined)
    for (const socket of [client, server]) {
      socket.setNoDelay(true)
      socket.on('close', () => this.drop(link, (other) => other.destroy()))
    }
    client.on('data', (chunk: Buffer) => this.route(link, 'request', chunk))
    server.on('data', (chunk: Buffer) => this.route(link, 'reply', chunk))
    client.on('end', () => this.endSide(link, 'request'))
    server.on('end', () => this.endSide(link, 'reply'))
    this.emit('connection')
  }

  private holds(direction: ProxyDirection): boolean {
    return this.currentMode === 'stall' || (this.currentMode === 'hold-replies' && direction === 'reply')
  }

  private route(link: Link, direction: ProxyDirection, chunk: Buffer): void {
    const holding = () => this.holds(direction) || link.held[direction].length > 0
    this.emit('chunk', { direction, chunk, held: holding() } satisfies ProxyChunk)
    if (!this.links.has(link) || this.currentMode === 'reset' || this.currentMode === 'cut') return
    if (holding()) {
      link.held[direction].push(chunk)
      this.emit('held', { direction, chunk, held: true } satisfies ProxyChunk)
      return
    }
    receiver(link, direction).write(chunk)
  }

  private endSide(link: Link, direction: ProxyDirection): void {
    if (this.holds(direction) || link.held[direction].length > 0) link.endAfterFlush[direction] = true
    else receiver(link, direction).end()
  }

  private flush(link: Link, direction: ProxyDirection): void {
    const target = receiver(link, direction)
    for (const chunk of link.held[direction].splice(0)) target.write(chunk)
    if (link.endAfterFlush[direction]) target.end()
  }

  private drop(link: Link, end: (socket: Socket) => void): void {
    if (!this.links.delete(link)) return
    link.held.request.length = 0
    link.held.reply.length = 0
    end(link.client)
    end(link.server)
  }
}

function receiver(link: Link, direction: ProxyDirection): Socket {
  return direction === 'request' ? link.server : link.client
}

function resetSocket(socket: Socket): void {
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}
