// The lock workflow's ID, for the tests that speak to the workflow itself (the contract suite never does).
import { DEFAULT_ID_PREFIX, lockIdPrefix } from '../../lib/ids.js';

export const lockWorkflowId = (resourceId: string): string => lockIdPrefix(DEFAULT_ID_PREFIX) + resourceId;
