// The test shop's script: loads the SDK the query names, pointed at the API, and exposes `window.shop`
// for tests/browser/test_sdks.py. Query: sdk=segment|rudderstack, api=<base URL the SDK sends to>,
// writeKey=<the source's key>, beacon=1 (RudderStack: sendBeacon transport, its own "Page Unloaded").
(() => {
  // Every request the page's SDK makes with XMLHttpRequest or fetch, its messageIds and the status
  // it got (0: a network failure), as the page itself saw it: Playwright's network events miss
  // the answers to some preflighted XMLHttpRequests (RudderStack's), so the tests read this.
  const wire = [];
  const messageIds = (body) => {
    try {
      const payload = JSON.parse(body);
      return (payload.batch || [payload]).map((m) => m && m.messageId).filter(Boolean);
    } catch {
      return [];
    }
  };
  const { open, send } = XMLHttpRequest.prototype;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.wired = { method: String(method).toUpperCase(), url: String(url) };
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (body) {
    const entry = { ...this.wired, messageIds: typeof body === 'string' ? messageIds(body) : [], status: null };
    wire.push(entry);
    this.addEventListener('loadend', () => { entry.status = this.status; });
    return send.call(this, body);
  };
  const pageFetch = window.fetch;
  window.fetch = async (input, init = {}) => {
    const entry = { method: (init.method || 'GET').toUpperCase(), url: String(input.url || input),
                    messageIds: typeof init.body === 'string' ? messageIds(init.body) : [], status: null };
    wire.push(entry);
    try {
      const response = await pageFetch(input, init);
      entry.status = response.status;
      return response;
    } catch (error) {
      entry.status = 0;
      throw error;
    }
  };

  const query = new URLSearchParams(location.search);
  const sdk = query.get('sdk');
  const api = new URL(query.get('api'));
  const writeKey = query.get('writeKey');
  const beacon = query.get('beacon') === '1';
  const base = api.href.replace(/\/$/, '');

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(script);
    });
  }

  // Segment's analytics.js 2.0: the settings document from cdnURL, events to {protocol}://{apiHost}/{t|i|p|g|a}.
  async function segment() {
    const [analytics] = await window.AnalyticsBrowser.load(
      { writeKey, cdnURL: base },
      {
        integrations: {
          'Segment.io': {
            apiHost: `${api.host}/v1`,
            protocol: api.protocol.replace(':', ''),
            // keepalive: a call made as the page goes away (Time On Page, on pagehide) still arrives
            deliveryStrategy: { strategy: 'standard', config: { keepalive: true } },
          },
        },
      },
    );
    return {
      anonymousId: () => analytics.user().anonymousId(),
      userId: () => analytics.user().id(),
      page: (category, name, properties) => analytics.page(category, name, properties),
      identify: (userId, traits) => analytics.identify(userId, traits),
      track: (event, properties) => analytics.track(event, properties),
      group: (groupId, traits) => analytics.group(groupId, traits),
      alias: (to, from) => analytics.alias(to, from),
      tracksTimeOnPage: false,
    };
  }

  // RudderStack's JS SDK v3: the source configuration from configUrl (/sourceConfig/), events to
  // {dataPlaneUrl}/v1/{type} (XHR) or, with beacon=1, to {dataPlaneUrl}/beacon/v1/batch.
  async function rudderstack() {
    const analytics = new window.RudderAnalytics();
    const options = { configUrl: base, logLevel: 'ERROR' };
    if (beacon) {
      Object.assign(options, {
        useBeacon: true,
        beaconQueueOptions: { flushQueueInterval: 1000 },
        autoTrack: { pageLifecycle: { enabled: true } },  // "Page Unloaded" with timeOnPage (ms) on leaving
      });
    }
    await new Promise((resolve) => {
      analytics.load(writeKey, base, { ...options, onLoaded: resolve });
    });
    const done = (call) => new Promise((resolve) => call(resolve));
    return {
      anonymousId: () => analytics.getAnonymousId(),
      userId: () => analytics.getUserId() || null,
      page: (category, name, properties) => done((cb) => analytics.page(category, name, properties, cb)),
      identify: (userId, traits) => done((cb) => analytics.identify(userId, traits, cb)),
      track: (event, properties) => done((cb) => analytics.track(event, properties, cb)),
      group: (groupId, traits) => done((cb) => analytics.group(groupId, traits, cb)),
      alias: (to, from) => done((cb) => analytics.alias(to, from, cb)),
      tracksTimeOnPage: beacon,
    };
  }

  // What the page shows its visitor: GET /v1/web/personalization with the write key and the anonymous id
  // (and the user id once known, which the API checks is the same customer).
  async function showOffer(client) {
    const offer = document.getElementById('offer');
    const visitor = new URLSearchParams({ anonymousId: client.anonymousId() });
    if (client.userId()) visitor.set('userId', client.userId());
    try {
      const response = await fetch(`${base}/v1/web/personalization?${visitor}`, {
        headers: { Authorization: `Basic ${btoa(`${writeKey}:`)}` },
      });
      if (!response.ok) throw new Error(`status ${response.status}`);
      const answer = await response.json();
      offer.textContent = answer.content.title;
      offer.dataset.contentId = answer.content.id;
      offer.dataset.personalized = String(answer.personalized);
      offer.dataset.state = 'shown';
      return answer;
    } catch (error) {
      offer.textContent = '';
      offer.dataset.state = `failed: ${error.message}`;
      return null;
    }
  }

  // Page behaviour as track events: each scroll depth (25, 50, 75, 100 %) once, and the seconds on
  // the page when the visitor leaves (unless the SDK reports it itself: RudderStack's "Page Unloaded").
  function watchEngagement(client) {
    const started = performance.now();
    const reached = new Set();
    addEventListener('scroll', () => {
      const bottom = window.scrollY + window.innerHeight;
      const percent = Math.min(100, Math.round((100 * bottom) / document.documentElement.scrollHeight));
      for (const depth of [25, 50, 75, 100]) {
        if (percent >= depth && !reached.has(depth)) {
          reached.add(depth);
          client.track('Scroll Depth Reached', { percent: depth });
        }
      }
    }, { passive: true });
    // analytics.js 2.0 runs its queue on timers, which stop once the page is going away: a call made
    // in pagehide never leaves. So the time is sent as the visitor follows a link, the navigation
    // held until the call is sent or for 300 ms (as analytics.trackLink does); keepalive (above)
    // lets the request in flight outlive the page.
    if (!client.tracksTimeOnPage) {
      document.addEventListener('click', async (event) => {
        const link = event.target.closest('a[href]');
        if (!link) return;
        event.preventDefault();
        const seconds = Math.round((performance.now() - started) / 1000);
        await Promise.race([client.track('Time On Page', { seconds }), new Promise((r) => setTimeout(r, 300))]);
        location.href = link.href;
      });
    }
  }

  window.shop = {
    sdk,
    wire,
    ready: (async () => {
      if (sdk !== 'segment' && sdk !== 'rudderstack') throw new Error(`unknown sdk ${sdk}`);
      await loadScript(`/sdks/dist/${sdk}.js`);
      const client = await (sdk === 'segment' ? segment() : rudderstack());
      window.shop.client = client;
      document.getElementById('next').href = location.href;  // the next guide: this page again
      watchEngagement(client);
      return client;
    })(),
    showOffer: async () => showOffer(await window.shop.ready),
  };
})();
