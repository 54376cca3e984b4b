// The shared worker that holds the browser's one live connection (docs/live.md "One socket per browser"):
// every tab of the origin connects a port (liveclient.js), and the hub (livehub.js) follows what they follow.
// A tab says `bye` when it goes; one that cannot (a crash, a killed process) is noticed when the lock it
// holds for its life (`parley-tab-ID`) is released.

import { Hub } from './livehub.js';

const hub = new Hub();

self.onconnect = (e) => {
  const port = e.ports[0];
  const me = { post: (m) => port.postMessage(m) };
  let tab = null;
  port.onmessage = (ev) => {
    const m = ev.data || {};
    if (m.op === 'join' && m.tab !== tab) {
      tab = m.tab;
      const gone = tab;
      if (self.navigator.locks) self.navigator.locks.request(`parley-tab-${gone}`, () => hub.leave(gone));
    }
    if (tab !== null) hub.handle(tab, me, m);
  };
  port.start();
};
