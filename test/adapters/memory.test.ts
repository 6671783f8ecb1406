import { MemoryStore } from '../../adapters/memory/index.js'
import { describeKeyStore } from '../conformance/describe-key-store.js'

describeKeyStore('memory', () => new MemoryStore())
