import { describeNetworkFaults } from './describe-network-faults.js'
import { NETWORK_BACKENDS } from './network-backends.js'

await describeNetworkFaults(NETWORK_BACKENDS.mariadb)
