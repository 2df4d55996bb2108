// Every subcommand, in the order `shardline --help` lists them.
import type { Command } from '../command.js';
import { benchJournalCommand } from './bench-journal.js';
import { benchMqttCommand } from './bench-mqtt.js';
import { benchPlacementCommand } from './bench-placement.js';
import { benchRestartCommand } from './bench-restart.js';
import { ctlCommands } from './ctl.js';
import { shardDumpCommand } from './shard-dump.js';
import { shardListCommand } from './shard-list.js';
import { shardVerifyCommand } from './shard-verify.js';
import { startCommand } from './start.js';

export const commands: Command[] = [startCommand, shardListCommand, shardVerifyCommand, shardDumpCommand, benchJournalCommand, benchMqttCommand, benchRestartCommand, benchPlacementCommand, ...ctlCommands];
