// @ts-check
// The page's microphone for voice through the edge: opened once per live view, put on each new connection's
// audio sender, muted by disabling the track (the sender keeps sending silence). No DOM.

export class Microphone {
  /** @param {() => Promise<MediaStream>} getUserMedia */
  constructor(getUserMedia) {
    this.getUserMedia = getUserMedia;
    /** @type {MediaStream|null} */
    this.stream = null;
    /** @type {Promise<MediaStream|null>|null} */
    this.opening = null;
    /** @type {string|null} why there is no microphone */
    this.error = null;
    /** @type {RTCRtpSender|null} the current connection's audio sender */
    this.sender = null;
    this.muted = false;
    this.stopped = false;
  }

  /**
   * Ask for the microphone (once).
   * @returns {Promise<MediaStream|null>} null when refused or absent (`error` says why)
   */
  open() {
    this.opening ??= this.getUserMedia().then(
      (stream) => {
        if (this.stopped) {
          for (const track of stream.getTracks()) track.stop();
          return null;
        }
        this.stream = stream;
        this._applyMute();
        void this._attach();
        return stream;
      },
      (err) => {
        this.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        return null;
      },
    );
    return this.opening;
  }

  /**
   * The microphone if it is there within `ms`: the stream, null (refused, absent, never asked), or undefined
   * (still waiting for the permission prompt).
   * @param {number} ms
   * @returns {Promise<MediaStream|null|undefined>}
   */
  async within(ms) {
    if (!this.opening) return null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    try {
      return /** @type {MediaStream|null|undefined} */ (await Promise.race([this.opening, timeout]));
    } finally {
      clearTimeout(timer);
    }
  }

  get track() {
    return this.stream?.getAudioTracks()[0] ?? null;
  }

  /**
   * Send on this connection's audio sender: now if the microphone is open, else as soon as it opens
   * (`replaceTrack` on a sendrecv transceiver needs no renegotiation).
   * @param {RTCRtpSender|null} sender null when the connection closed
   * @returns {Promise<void>}
   */
  async sendOn(sender) {
    this.sender = sender;
    await this._attach();
  }

  async _attach() {
    const sender = this.sender;
    const track = this.track;
    if (!sender || !track || sender.track === track) return;
    try {
      await sender.replaceTrack(track);
    } catch (err) {
      this.error = `the microphone could not be sent (${err instanceof Error ? err.message : String(err)})`;
    }
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.muted = muted;
    this._applyMute();
  }

  _applyMute() {
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !this.muted;
  }

  stop() {
    this.stopped = true;
    this.sender = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}
