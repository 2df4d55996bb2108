// Every simulation suite `npm run sim` knows, one line each.
import { brokerPowerCutSuite } from './broker-suite.js';
import { journalSuite } from './journal-suite.js';
import { placementReplicaSuite } from './placement-replica-suite.js';
import { placementSuite } from './placement-suite.js';
import { reassignSuite, replicationControllerSuite } from './replication-controller-suite.js';
import { replicationSuite } from './replication-suite.js';
import type { SimSuite } from './suite.js';

export const simSuites: SimSuite[] = [journalSuite, brokerPowerCutSuite, placementSuite, placementReplicaSuite, replicationSuite, replicationControllerSuite, reassignSuite];
