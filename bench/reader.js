// The bench's in-page instruments, injected with Playwright's `add_init_script` into the floor page and into the
// unchanged expert console / sonographer page. Nothing here changes what the page does: it only listens.
//
// - Stamp reader: every <video> in the page gets a `requestVideoFrameCallback`; each callback takes the frame
//   being presented (`new VideoFrame(video)`), copies only the stamp strip out of it (`copyTo` with a rect: the
//   luma plane as decoded, no canvas, no colour conversion; a small canvas is the fallback), reads the bits
//   (stamp.py documents the layout), checks the CRC and records {counter, capture time, display time, …}.
//   Mangled reads are counted and discarded. All times are host wall-clock ms: `performance.timeOrigin + <performance clock>`.
// - Stats: `getStats()` of the page's peer connection (the floor page's `window.__benchPc`, or the console's
//   `window.teleus.live.pc`), reduced to the inbound video counters the bench needs.
// - Console only: the `frame {rtp, capture_ms}` messages on the `live` data channel (an extra listener), so each
//   stamped frame can be matched with the capture time production would use for it.
// - Pointer: the expert's pointermove events and the pointer messages its page sends (`RTCDataChannel.send` is
//   wrapped: observed and passed through), and the sonographer's received pointer positions.
(() => {
  if (window.__bench) return;
  const CFG = __BENCH_CONFIG__;
  const S = CFG.sample; // canvas pixels per stamp block
  const W = CFG.cols * S;
  const H = CFG.rows * S;
  const MAX_SAMPLES = 40000;
  const MAX_RTP = 3000;

  const TABLE = [];
  for (let b = 0; b < 256; b++) {
    let crc = b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    TABLE.push(crc & 0xffff);
  }
  /** @param {number[]} bytes */
  function crc16(bytes) {
    let crc = 0xffff;
    for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
    return crc;
  }

  const B = {
    samples: [],
    bad: 0,
    callbacks: 0,
    errors: 0,
    lastError: null,
    decodeMs: 0,
    rtpCaptures: new Map(),
    moves: [],
    pointers: [],
    videos: 0,
    vfFailures: 0,
    mismatched: 0,
    sends: [],
    frameReads: 0,
    canvasReads: 0,
  };
  window.__bench = B;
  const attached = new WeakSet();
  let canvas = null;
  let ctx = null;

  // Bits from the stamp strip's luma (or grey RGB): block centres, 2×2 pixels each, against mid-level.
  function bitsToStamp(value, threshold) {
    let word = 0n;
    let margin = 255;
    for (let r = 0; r < CFG.rows; r++) {
      for (let c = 0; c < CFG.cols; c++) {
        const v = value(r, c);
        margin = Math.min(margin, Math.abs(v - threshold));
        word = (word << 1n) | (v > threshold ? 1n : 0n);
      }
    }
    const crc = Number(word & 0xffffn);
    const payload = word >> 16n;
    const bytes = [];
    for (let k = 7; k >= 0; k--) bytes.push(Number((payload >> BigInt(8 * k)) & 0xffn));
    if (crc16(bytes) !== crc) return null;
    const counter = Number(payload >> BigInt(CFG.timeBits));
    const units = Number(payload & ((1n << BigInt(CFG.timeBits)) - 1n));
    return { counter, capMs: units * CFG.timeUnitMs, margin };
  }

  const HALF = CFG.block / 2;

  // A sender may scale the picture down (bench/network.py): with the source's width known, the strip's blocks
  // are found at the same fraction of the picture.
  const scaleOf = (width) => (CFG.sourceWidth && width < CFG.sourceWidth ? width / CFG.sourceWidth : 1);

  // Fast path: WebCodecs. The presented frame's strip is copied in its own pixel format (I420/NV12: the Y
  // plane is read directly), no canvas, no colour conversion of the whole picture.
  async function decodeFrame(frame) {
    const v = frame.visibleRect;
    const k = scaleOf(v.width);
    if (k !== 1) return decodeScaled(frame, v, k);
    const rect = { x: v.x, y: v.y, width: CFG.cols * CFG.block, height: CFG.rows * CFG.block };
    const buffer = new Uint8Array(frame.allocationSize({ rect }));
    const layout = await frame.copyTo(buffer, { rect });
    const format = frame.format || "";
    if (/^(I4|NV12)/.test(format)) {
      const { offset, stride } = layout[0];
      const luma = (r, c) => {
        const y = r * CFG.block + HALF - 1;
        const x = c * CFG.block + HALF - 1;
        const i = offset + y * stride + x;
        return (buffer[i] + buffer[i + 1] + buffer[i + stride] + buffer[i + stride + 1]) / 4;
      };
      return bitsToStamp(luma, 125.5); // video range: 16 … 235
    }
    if (/^(RGB|BGR)/.test(format)) {
      const { offset, stride } = layout[0];
      const grey = (r, c) => {
        const i = offset + (r * CFG.block + HALF) * stride + (c * CFG.block + HALF) * 4;
        return (buffer[i] + buffer[i + 1] + buffer[i + 2]) / 3;
      };
      return bitsToStamp(grey, 128);
    }
    throw new Error(`unsupported VideoFrame format ${format}`);
  }

  // A scaled-down picture: the strip drawn from the frame into the small canvas, scaled back.
  function decodeScaled(frame, v, k) {
    return decodeStrip(frame, v.x, v.y, CFG.cols * CFG.block * k, CFG.rows * CFG.block * k);
  }

  // Fallback: draw only the strip into a small canvas.
  function decodeCanvas(video) {
    const k = scaleOf(video.videoWidth);
    return decodeStrip(video, 0, 0, CFG.cols * CFG.block * k, CFG.rows * CFG.block * k);
  }

  function decodeStrip(source, sx, sy, sw, sh) {
    if (!ctx) {
      canvas = document.createElement("canvas");
      canvas.width = W;
      canvas.height = H;
      ctx = canvas.getContext("2d", { willReadFrequently: true });
    }
    ctx.drawImage(source, sx, sy, sw, sh, 0, 0, W, H);
    const data = ctx.getImageData(0, 0, W, H).data;
    const c0 = Math.floor(S / 2) - 1;
    const grey = (r, c) => {
      let sum = 0;
      for (let dy = 0; dy < 2; dy++) {
        for (let dx = 0; dx < 2; dx++) {
          const i = ((r * S + c0 + dy) * W + (c * S + c0 + dx)) * 4;
          sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
        }
      }
      return sum / 4;
    };
    return bitsToStamp(grey, 128);
  }

  function record(stamp, times) {
    if (!stamp) {
      B.bad++;
      return;
    }
    // `new VideoFrame(video)` takes the element's newest frame, which is now and then one frame newer than the
    // frame the callback's metadata describes: then the stamp and the times are of different frames.
    if (times.ft !== null && times.mt !== null && Math.abs(times.ft - times.mt * 1e6) > 1000) {
      B.mismatched++;
      return;
    }
    const edgeCap = times.rtp !== null && B.rtpCaptures.has(times.rtp) ? B.rtpCaptures.get(times.rtp) : null;
    B.samples.push({ n: stamp.counter, cap: stamp.capMs, ...times, ecap: edgeCap, margin: stamp.margin });
    if (B.samples.length > MAX_SAMPLES) B.samples.splice(0, B.samples.length - MAX_SAMPLES);
  }

  function onFrame(video, now, md) {
    B.callbacks++;
    const origin = performance.timeOrigin;
    const times = {
      disp: typeof md.expectedDisplayTime === "number" ? origin + md.expectedDisplayTime : null,
      pres: typeof md.presentationTime === "number" ? origin + md.presentationTime : null,
      cb: origin + now,
      recv: typeof md.receiveTime === "number" ? origin + md.receiveTime : null,
      rtp: typeof md.rtpTimestamp === "number" ? md.rtpTimestamp >>> 0 : null,
      pf: md.presentedFrames ?? null,
      mt: typeof md.mediaTime === "number" ? md.mediaTime : null,
      ft: null,
    };
    const t0 = performance.now();
    let frame = null;
    if (B.vfFailures < 30 && typeof VideoFrame === "function") {
      try {
        frame = new VideoFrame(video);
      } catch (err) {
        B.vfFailures++;
        B.lastError = `VideoFrame: ${err}`;
      }
    }
    if (!frame) {
      B.canvasReads++;
      record(decodeCanvas(video), times);
      B.decodeMs += performance.now() - t0;
      return;
    }
    B.frameReads++;
    times.ft = frame.timestamp;
    decodeFrame(frame)
      .then((stamp) => record(stamp, times))
      .catch((err) => {
        B.errors++;
        B.vfFailures++;
        B.lastError = String(err);
      })
      .finally(() => {
        frame.close();
        B.decodeMs += performance.now() - t0;
      });
  }

  function attachVideo(video) {
    const callback = (now, md) => {
      try {
        onFrame(video, now, md);
      } catch (err) {
        B.errors++;
        B.lastError = String(err);
      }
      video.requestVideoFrameCallback(callback);
    };
    video.requestVideoFrameCallback(callback);
    B.videos++;
  }

  function attachLiveChannel(channel) {
    channel.addEventListener("message", (event) => {
      if (typeof event.data !== "string" || !event.data.includes('"frame"')) return;
      try {
        const m = JSON.parse(event.data);
        if (m.type !== "frame") return;
        B.rtpCaptures.set(m.rtp >>> 0, m.capture_ms);
        while (B.rtpCaptures.size > MAX_RTP) B.rtpCaptures.delete(B.rtpCaptures.keys().next().value);
      } catch {
        // not ours to judge
      }
    });
  }

  setInterval(() => {
    for (const video of document.querySelectorAll("video")) {
      if (!attached.has(video) && "requestVideoFrameCallback" in video) {
        attached.add(video);
        attachVideo(video);
      }
    }
    const live = window.teleus && window.teleus.live;
    const channel = live && live.live;
    if (channel && !attached.has(channel)) {
      attached.add(channel);
      attachLiveChannel(channel);
    }
  }, 50);

  function peerConnection() {
    if (window.__benchPc) return window.__benchPc;
    const live = window.teleus && window.teleus.live;
    return (live && live.pc) || null;
  }

  // The console's clock pings (PROTOCOL.md §3: ping {t} → pong {t, edge_ms}); page and edge share the host
  // clock here, so edge_ms − t is the page→edge one-way time of the data channel, received − edge_ms the way back.
  let lastPing = 0;
  function newPings() {
    const live = window.teleus && window.teleus.live;
    const pings = (live && live.latency && live.latency.pings) || [];
    const out = pings.filter((p) => p.t > lastPing).map((p) => ({ t: p.t, received: p.received, edgeMs: p.edgeMs }));
    if (out.length) lastPing = out[out.length - 1].t;
    return out;
  }

  B.drain = () => {
    const out = B.samples;
    B.samples = [];
    const pings = newPings();
    return {
      samples: out, bad: B.bad, callbacks: B.callbacks, errors: B.errors, lastError: B.lastError,
      decodeMs: B.decodeMs, frameReads: B.frameReads, canvasReads: B.canvasReads, mismatched: B.mismatched, pings,
    };
  };

  B.clock = () => ({ perf: performance.timeOrigin + performance.now(), date: Date.now() });

  B.stats = async () => {
    const pc = peerConnection();
    if (!pc) return null;
    const report = await pc.getStats();
    let video = null;
    let pair = null;
    for (const e of report.values()) {
      if (e.type === "inbound-rtp" && (e.kind ?? e.mediaType) === "video") {
        if (!video || (e.bytesReceived ?? 0) > (video.bytesReceived ?? 0)) video = e;
      }
      if (e.type === "candidate-pair" && (e.selected || (e.nominated && e.state === "succeeded"))) pair = e;
    }
    if (!video) return null;
    const codec = video.codecId ? report.get(video.codecId) : null;
    const keys = [
      "framesDecoded", "framesReceived", "framesDropped", "bytesReceived", "packetsReceived", "packetsLost",
      "frameWidth", "frameHeight", "jitterBufferDelay", "jitterBufferTargetDelay", "jitterBufferMinimumDelay",
      "jitterBufferEmittedCount", "totalDecodeTime", "totalProcessingDelay", "totalAssemblyTime",
      "framesAssembledFromMultiplePackets", "keyFramesDecoded", "freezeCount", "totalFreezesDuration",
      "nackCount", "pliCount", "firCount", "decoderImplementation",
    ];
    const out = { t: performance.timeOrigin + performance.now() };
    for (const k of keys) out[k] = video[k] ?? null;
    out.codec = codec ? codec.mimeType : null;
    out.fmtp = codec ? codec.sdpFmtpLine ?? null : null;
    out.rttMs = pair && typeof pair.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : null;
    // Which media stream (a=msid) the sender put each track in: one stream for audio and video means the
    // browser synchronises their playout (lip sync).
    const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || "";
    const streams = {};
    for (const section of sdp.split(/\r?\nm=/).slice(1)) {
      const kind = section.split(" ")[0];
      const msid = /\r?\na=msid:(\S+)/.exec(section);
      if (kind === "audio" || kind === "video") streams[kind] = msid ? msid[1] : null;
    }
    out.msidStreams = streams;
    out.audioVideoSameStream = !!(streams.audio && streams.video && streams.audio === streams.video);
    return out;
  };

  // The console's production latency estimate and the ping clock offset it uses (edge clock − page clock).
  B.production = () => {
    const live = window.teleus && window.teleus.live;
    if (!live) return null;
    const now = performance.timeOrigin + performance.now();
    const offset = live.latency && typeof live.latency.offset === "function" ? live.latency.offset(now) : null;
    const stats = live.snapshot().stats;
    return { at: now, p50: stats.latencyP50, p95: stats.latencyP95, count: stats.latencySamples, offset };
  };

  // Observes (and passes through) every pointer message the page sends, to split the pointer's path.
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (B.recordSends && typeof data === "string" && data.includes('"pointer"')) {
      B.sends.push({ t: performance.timeOrigin + performance.now(), data });
    }
    return send.call(this, data);
  };

  B.trackMoves = () => {
    B.moves = [];
    B.sends = [];
    B.recordSends = true;
    window.addEventListener(
      "pointermove",
      (e) => B.moves.push({ t: performance.timeOrigin + e.timeStamp, h: performance.timeOrigin + performance.now(), x: e.clientX, y: e.clientY }),
      { capture: true },
    );
  };

  B.trackPointers = () => {
    B.pointers = [];
    const live = window.teleus.live;
    live.addEventListener("pointers", () => {
      const p = live.remotePointer;
      if (!p) return;
      B.pointers.push({ t: performance.timeOrigin + live.pointerReceivedAt, x: p.x, y: p.y, visible: p.visible, at: p.at });
    });
  };
})();
