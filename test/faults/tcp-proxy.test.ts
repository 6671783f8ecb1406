import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { TcpProxy } from '../support/tcp-proxy.js'

/** The proxy's own behaviour, against a real echo server on the loopback interface. */
let echo: Server
let echoPort: number
const received: Buffer[] = []
const echoSockets = new Set<Socket>()

beforeAll(async () => {
  echo = createServer((socket) => {
    echoSockets.add(socket)
    socket.on('close', () => echoSockets.delete(socket))
    socket.on('error', () => undefined)
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk)
      socket.write(chunk)
    })
  })
  echo.listen(0, '127.0.0.1')
  await once(echo, 'listening')
  echoPort = (echo.address() as AddressInfo).port
})
afterAll(async () => {
  for (const socket of echoSockets) socket.destroy()
  await new Promise((resolve) => echo.close(resolve))
})

let proxy: TcpProxy
const clients: Socket[] = []
beforeAll(async () => {
  proxy = await TcpProxy.start({ host: '127.0.0.1', port: echoPort })
})
afterAll(() => proxy.close())
afterEach(async () => {
  for (const socket of clients.splice(0)) socket.destroy()
  // Drop whatever a test left held, so nothing reaches the echo server later.
  proxy.cut()
  await proxy.restore()
  received.length = 0
})

async function open(): Promise<Socket> {
  const socket = connect(proxy.port, '127.0.0.1')
  clients.push(socket)
  socket.on('error', () => undefined)
  await once(socket, 'connect')
  return socket
}

/** The first `data` chunk, or the error or close that came instead. */
function nextEvent(socket: Socket): Promise<{ data?: string; error?: NodeJS.ErrnoException; closed?: true }> {
  return new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve({ data: chunk.toString() }))
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error }))
    socket.once('close', () => resolve({ closed: true }))
  })
}

describe('TcpProxy', () => {
  it('passes bytes both ways and reports each chunk', async () => {
    const seen: string[] = []
    const listener = (chunk: { direction: string; chunk: Buffer }) => seen.push(`${chunk.direction}:${chunk.chunk}`)
    proxy.on('chunk', listener)
    const socket = await open()
    socket.write('ping')
    expect(await nextEvent(socket)).toEqual({ data: 'ping' })
    proxy.off('chunk', listener)
    expect(seen).toEqual(['request:ping', 'reply:ping'])
  })

  it('cut: closes open connections and refuses new ones until restore, on the same port', async () => {
    const socket = await open()
    const closed = once(socket, 'close')
    proxy.cut()
    await closed
    const refused = connect(proxy.port, '127.0.0.1')
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
    expect(error.code).toBe('ECONNREFUSED')
    await proxy.restore()
    const again = await open()
    again.write('back')
    expect(await nextEvent(again)).toEqual({ data: 'back' })
  })

  it('stall: keeps the connection, forwards nothing either way, and delivers the held bytes on restore', async () => {
    const socket = await open()
    proxy.stall()
    const held = proxy.nextHeld('request')
    socket.write('later')
    expect((await held).chunk.toString()).toBe('later')
    expect(received).toHaveLength(0)
    expect(proxy.heldBytes).toBe(5)
    const answer = nextEvent(socket)
    await proxy.restore()
    expect(await answer).toEqual({ data: 'later' })
    expect(Buffer.concat(received).toString()).toBe('later')
  })

  it('stall: accepts new connections but forwards nothing on them', async () => {
    proxy.stall()
    const socket = await open()
    const held = proxy.nextHeld('request')
    socket.write('new')
    await held
    expect(received).toHaveLength(0)
  })

  it('hold-replies: the request reaches the server, the reply is held', async () => {
    const socket = await open()
    proxy.holdReplies()
    const reply = proxy.nextHeld('reply')
    socket.write('write')
    expect((await reply).chunk.toString()).toBe('write')
    expect(Buffer.concat(received).toString()).toBe('write') // the server got it
    const answer = nextEvent(socket)
    await proxy.restore()
    expect(await answer).toEqual({ data: 'write' })
  })

  it('reset: sends RSTs to open connections and to new ones until restore, dropping held bytes', async () => {
    const socket = await open()
    proxy.holdReplies()
    const reply = proxy.nextHeld('reply')
    socket.write('lost')
    await reply
    const outcome = nextEvent(socket)
    proxy.reset()
    expect((await outcome).error?.code).toBe('ECONNRESET')
    const fresh = connect(proxy.port, '127.0.0.1')
    fresh.on('error', () => undefined)
    clients.push(fresh)
    expect((await nextEvent(fresh)).error?.code).toBe('ECONNRESET')
    await proxy.restore()
    expect(proxy.heldBytes).toBe(0)
    const again = await open()
    again.write('ok')
    expect(await nextEvent(again)).toEqual({ data: 'ok' })
  })
})
