// The action's entry: no logic here (see run-action.ts).
import { runAction } from './run-action.js';

process.exitCode = await runAction();
