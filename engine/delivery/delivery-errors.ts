// Coded errors of engine/delivery. A front end chooses its own delivery tags; these catch a front
// end that breaks the window's rules, and name the tag so its log line points at the bug.
import { defineError } from '../../base/index.js';

export const DeliveryErrors = {
  tagInUse: defineError({
    code: 'SL_DELIVERY_TAG_IN_USE',
    meaning: 'A protocol front end gave a delivery a tag that another delivery in the same in-flight window still holds (an internal fault of the front end, not of the client).',
    fix: 'Report it with the node log line that names the tag: it is a fault in the front end, not something a setting or the client can change.',
    message: (tag: number) => `delivery tag ${tag} is already in flight`,
  }),
};
