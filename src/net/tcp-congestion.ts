// Congestion window growth and reduction: slow start and congestion avoidance of RFC 5681 with
// appropriate byte counting (RFC 3465, L = 2*SMSS), and CUBIC (RFC 9438) as the alternative
// avoidance rule. Fast retransmit/recovery bookkeeping (RFC 6582) lives in the connection; this
// module answers "how big may cwnd be".

import type { TcpCongestion } from './tcp.js';

/** RFC 9438 4.6: multiplicative decrease factor. */
const CUBIC_BETA = 0.7;
/** RFC 9438 5: the C constant (segments / s^3). */
const CUBIC_C = 0.4;

/** Window state of one connection (bytes). */
export class CongestionControl {
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  readonly #algo: TcpCongestion;
  #mss: number;
  // CUBIC (RFC 9438 4): epoch start (ms), W_max and W_est in segments, K in seconds.
  #epoch = -1;
  #wMax = 0;
  #wEst = 0;
  #k = 0;
  #caBytes = 0; // NewReno: bytes acked toward the next +1 MSS

  constructor(algo: TcpCongestion, mss: number) {
    this.#algo = algo;
    this.#mss = mss;
    this.cwnd = initialWindow(mss);
  }

  /** The send MSS became known (after the handshake): resets the initial window. */
  setMss(mss: number): void {
    this.#mss = mss;
    this.cwnd = initialWindow(mss);
  }

  /** `acked` new bytes were acknowledged outside recovery, `rtt` the smoothed RTT (ms). */
  onAck(acked: number, now: number, srtt: number): void {
    const mss = this.#mss;
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, 2 * mss); // RFC 3465 ABC with L = 2
      return;
    }
    if (this.#algo === 'newreno') {
      this.#caBytes += acked;
      if (this.#caBytes >= this.cwnd) {
        this.#caBytes -= this.cwnd;
        this.cwnd += mss; // RFC 5681 3.1 eq. 3 by byte counting
      }
      return;
    }
    // CUBIC, RFC 9438 4.2-4.4 (in segments; t in seconds).
    const cwndSeg = this.cwnd / mss;
    if (this.#epoch < 0) {
      this.#epoch = now;
      if (cwndSeg < this.#wMax) {
        this.#k = Math.cbrt((this.#wMax - cwndSeg) / CUBIC_C);
      } else {
        this.#k = 0;
        this.#wMax = cwndSeg;
      }
      this.#wEst = cwndSeg;
    }
    const t = (now - this.#epoch + srtt) / 1000;
    const target = Math.min(CUBIC_C * (t - this.#k) ** 3 + this.#wMax, 1.5 * cwndSeg);
    // Reno-friendly region (RFC 9438 4.3), alpha = 3*(1-beta)/(1+beta).
    const alpha = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);
    this.#wEst += (alpha * acked) / this.cwnd;
    let next = this.cwnd;
    if (this.#wEst > target) next = this.#wEst * mss;
    else if (target > cwndSeg) next = this.cwnd + ((target - cwndSeg) / cwndSeg) * acked;
    this.cwnd = Math.max(this.cwnd, Math.floor(next));
  }

  /** Fast retransmit entry (RFC 5681 3.2 step 2 / RFC 9438 4.6): returns the new ssthresh. */
  onLoss(flight: number): number {
    const mss = this.#mss;
    this.#caBytes = 0;
    if (this.#algo === 'newreno') {
      this.ssthresh = Math.max(Math.floor(flight / 2), 2 * mss);
    } else {
      const cwndSeg = this.cwnd / mss;
      // RFC 9438 4.7 fast convergence.
      this.#wMax = cwndSeg < this.#wMax ? (cwndSeg * (1 + CUBIC_BETA)) / 2 : cwndSeg;
      this.#epoch = -1;
      this.ssthresh = Math.max(Math.floor(Math.min(flight, this.cwnd) * CUBIC_BETA), 2 * mss);
    }
    return this.ssthresh;
  }

  /** Retransmission timeout (RFC 5681 3.1 eq. 4): loss window of one segment. */
  onTimeout(flight: number): void {
    this.onLoss(flight);
    this.cwnd = this.#mss;
  }
}

/** RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)). */
function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}

