// @ts-check
// Change notices from the server: one EventSource on GET /api/v1/events (signaling_server/PROTOCOL.md §6) shared
// by every page. A notice names a topic and carries no data: a page subscribed to the topic asks its own REST call
// again, at most every COALESCE_MS. A `consultations` notice may name the ids of the changed consultations: the
// page is then told which rows to ask for (the ids gathered while it waited), not the whole list. When the stream
// (re)opens, every page asks once for everything, since notices may have been missed while it was down; a slow
// safety refresh stays for what the stream could not tell. No DOM.

/** @typedef {"consultations"|"queue"|"findings"|"duty"|"orders"} Topic */

/** What each page still refetches on its own, in case a notice was lost (a server killed mid-write, Redis away). */
export const SAFETY_REFRESH_MS = 60_000;
/** A page waits at least this long after a refetch before the next, however many notices arrive; longer when the
 * refetch itself was slow (as long as it took), so that a busy server is asked less, not more. */
export const COALESCE_MS = 500;
/** How long the stream stays open with no page subscribed (route changes unsubscribe, then subscribe again). */
const IDLE_CLOSE_MS = 5_000;
/** Waits before opening again after the browser gave up on the stream (an HTTP error: 401, 502 …). */
const RETRY_MS = [2_000, 5_000, 15_000, 30_000, 60_000];

/** What changed since a page last asked: `ids` the consultations a notice named, or null: anything (ask for all). */
/** @typedef {{ids: string[]|null}} Changed */

/** One page's interest: its topics and its refetch, one at a time and spaced. */
class Subscription {
  /**
   * @param {Set<string>} topics
   * @param {(changed: Changed) => unknown} onChange may return a promise: the next refetch waits for it
   */
  constructor(topics, onChange) {
    this.topics = topics;
    this.onChange = onChange;
    /** The ids named since the last refetch; null once anything unnamed changed (the whole list is wanted). */
    /** @type {Set<string>|null} */
    this.ids = new Set();
    /** When the last refetch ended, and how long it took. */
    this.lastEnd = -Infinity;
    this.lastTook = 0;
    this.running = false;
    this.wanted = false;
    this.stopped = false;
    /** Refetches failed in a row (each waits longer before the next try). */
    this.failures = 0;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.timer = null;
    this.safety = setInterval(() => this.poke(null), SAFETY_REFRESH_MS);
  }

  /**
   * Refetch soon: at once if the last one ended long enough ago, else once it has; never two at a time.
   * @param {string[]|null} [ids] the changed consultations a notice named; none: ask for everything
   */
  poke(ids = null) {
    if (ids === null || this.ids === null) this.ids = null;
    else for (const id of ids) this.ids.add(id);
    this.wanted = true;
    if (this.timer !== null || this.running || this.stopped) return;
    const wait = Math.max(0, this.lastEnd + Math.max(COALESCE_MS, this.lastTook) - performance.now());
    this.timer = setTimeout(() => void this.run(), wait);
  }

  async run() {
    this.timer = null;
    this.wanted = false;
    this.running = true;
    const changed = { ids: this.ids === null ? null : [...this.ids] };
    this.ids = new Set();
    const start = performance.now();
    let failed = false;
    try {
      await this.onChange(changed);
      this.failures = 0;
    } catch {
      failed = true; // the page shows its own error; what it was asked for is asked again below
    } finally {
      this.running = false;
      this.lastEnd = performance.now();
      this.lastTook = this.lastEnd - start;
    }
    if (failed && !this.stopped) {
      // a failed refetch keeps what it was asked for (the rows a notice named would otherwise wait for the safety
      // refresh), and tries again after a growing pause
      this.failures += 1;
      if (changed.ids === null || this.ids === null) this.ids = null;
      else for (const id of changed.ids) this.ids.add(id);
      this.lastTook = Math.max(this.lastTook, RETRY_MS[Math.min(this.failures, RETRY_MS.length) - 1]);
      this.poke([]);
    } else if (this.wanted) this.poke([]); // notices that came during the refetch (their ids are kept)
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    clearInterval(this.safety);
  }
}

export class ChangeFeed {
  /** @param {{url?: string, EventSourceImpl?: typeof EventSource}} [options] */
  constructor({ url = "/api/v1/events", EventSourceImpl = globalThis.EventSource } = {}) {
    this.url = url;
    this.EventSourceImpl = EventSourceImpl;
    /** @type {Set<Subscription>} */
    this.subscriptions = new Set();
    /** @type {EventSource|null} */
    this.source = null;
    /** @type {ReturnType<typeof setTimeout>|null} */
    this.timer = null;
    this.failures = 0;
    /** Notices received since the page loaded (the console's tests read it). */
    this.received = 0;
    /** Times the stream opened. */
    this.opened = 0;
  }

  /**
   * Call `onChange` when any of `topics` changes (and after the stream reopens, and every SAFETY_REFRESH_MS).
   * It is told the consultations' ids that the notices since its last call named (`{ids: [...]}`), or `{ids: null}`
   * when anything may have changed; a page that keeps no rows ignores it and asks for everything.
   * @param {Topic[]} topics
   * @param {(changed: Changed) => unknown} onChange a refetch; when it returns a promise, the next call waits for
   *   it to settle
   * @returns {() => void} unsubscribe
   */
  subscribe(topics, onChange) {
    const subscription = new Subscription(new Set(topics), onChange);
    this.subscriptions.add(subscription);
    this.connect();
    return () => {
      subscription.stop();
      this.subscriptions.delete(subscription);
      if (!this.subscriptions.size) this.schedule(() => this.close(), IDLE_CLOSE_MS);
    };
  }

  /** Close the stream now (signing out). Subscriptions stay; a later `subscribe` opens it again. */
  close() {
    this.clearTimer();
    this.source?.close();
    this.source = null;
  }

  connect() {
    if (this.source || !this.subscriptions.size) {
      if (this.source) this.clearTimer(); // an idle close pending: the stream is wanted again
      return;
    }
    this.clearTimer();
    const source = new this.EventSourceImpl(this.url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.opened += 1;
      this.pokeAll(null); // whatever changed while the stream was down
    };
    source.onmessage = (event) => this.notice(event.data);
    source.onerror = () => {
      if (source.readyState !== this.EventSourceImpl.CLOSED) return; // the browser reconnects by itself (retry:)
      // Refused (a 401 after signing out elsewhere, a proxy's 502): each page asks once, so that its own call
      // meets the refusal and the router takes over; the stream is tried again later.
      if (this.source === source) this.source = null;
      this.pokeAll(null);
      const wait = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
      this.failures += 1;
      this.schedule(() => this.connect(), wait);
    };
  }

  /** @param {unknown} data */
  notice(data) {
    let topic;
    /** @type {string[]|null} */
    let ids = null;
    try {
      const parsed = JSON.parse(String(data));
      topic = typeof parsed?.topic === "string" ? parsed.topic : null;
      const named = parsed?.ids;
      if (Array.isArray(named) && named.every((id) => typeof id === "string")) ids = named;
    } catch {
      topic = null;
    }
    if (topic === null) return;
    this.received += 1;
    this.pokeAll(topic, ids);
  }

  /**
   * @param {string|null} topic null: every subscription
   * @param {string[]|null} [ids] the consultations the notice named; null: anything
   */
  pokeAll(topic, ids = null) {
    for (const subscription of this.subscriptions) {
      if (topic === null || subscription.topics.has(topic)) subscription.poke(ids);
    }
  }

  /**
   * @param {() => void} action
   * @param {number} ms
   */
  schedule(action, ms) {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      action();
    }, ms);
  }

  clearTimer() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
