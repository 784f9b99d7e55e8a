/* Progressive enhancement only: the pages work without this file.
   - Proof-of-work: while the person types, find a nonce so that SHA-256(challenge ":" nonce) starts with
     the required number of zero bits; a valid proof lets the report skip the no-JS queue.
   - File checks: count and size against the limits shown on the page, before anything is sent.
   - Sending: the button is disabled at the first press; forms with files are sent with XMLHttpRequest so a
     progress bar can show, and the answer (receipt, errors) replaces the page as a normal submit would.
   - Receipt: copy and print buttons; leaving asks for confirmation until "I have written down the code". */
(function () {
  "use strict";
  var K = [0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,
    0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,
    0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,
    0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,
    0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,
    0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,
    0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
  var W = new Int32Array(64);
  // SHA-256 of an ASCII string; returns the first 32-bit word (enough to count leading zero bits up to 32).
  function sha256FirstWord(s) {
    var n = s.length, words = ((n + 9 + 63) >> 6) << 4, m = new Int32Array(words), i;
    for (i = 0; i < n; i++) m[i >> 2] |= s.charCodeAt(i) << (24 - (i & 3) * 8);
    m[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    m[words - 1] = n * 8;
    var h0 = 0x6a09e667, h1 = 0xbb67ae85, h2 = 0x3c6ef372, h3 = 0xa54ff53a,
        h4 = 0x510e527f, h5 = 0x9b05688c, h6 = 0x1f83d9ab, h7 = 0x5be0cd19;
    for (var o = 0; o < words; o += 16) {
      var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7, t;
      for (i = 0; i < 64; i++) {
        if (i < 16) W[i] = m[o + i];
        else {
          var x = W[i - 15], y = W[i - 2];
          W[i] = (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) + W[i - 7] +
                 (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) + W[i - 16] | 0;
        }
        t = h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
            ((e & f) ^ (~e & g)) + K[i] + W[i] | 0;
        var t2 = (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
                 ((a & b) ^ (a & c) ^ (b & c)) | 0;
        h = g; g = f; f = e; e = d + t | 0; d = c; c = b; b = a; a = t + t2 | 0;
      }
      h0 = h0 + a | 0; h1 = h1 + b | 0; h2 = h2 + c | 0; h3 = h3 + d | 0;
      h4 = h4 + e | 0; h5 = h5 + f | 0; h6 = h6 + g | 0; h7 = h7 + h | 0;
    }
    return h0 >>> 0;
  }
  // Returns whenSolved(then): runs ``then`` once a nonce is found.
  function solve(form) {
    var challenge = form.elements.pow_challenge.value, bits = parseInt(form.dataset.powBits, 10) || 0;
    var mask = bits >= 32 ? 0xffffffff : bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    var nonce = 0, done = false, waiting = null;
    function step() {
      var end = nonce + 5000;
      for (; nonce < end; nonce++) {
        if ((sha256FirstWord(challenge + ":" + nonce) & mask) >>> 0 === 0) {
          form.elements.pow_nonce.value = String(nonce);
          done = true;
          if (waiting) waiting();
          return;
        }
      }
      setTimeout(step, 0);
    }
    setTimeout(step, 0);
    return function whenSolved(then) {
      if (done) then(); else waiting = then;
    };
  }
  function checkFiles(form) {
    var input = form.querySelector("input[type=file]");
    if (!input || !input.files) return true;
    var maxCount = parseInt(input.dataset.maxCount, 10), maxBytes = parseInt(input.dataset.maxBytes, 10);
    var message = "";
    if (input.files.length > maxCount) message = input.dataset.tooMany || "";
    for (var i = 0; i < input.files.length; i++) {
      if (input.files[i].size > maxBytes) message = input.dataset.tooLarge || "";
    }
    input.setCustomValidity(message);
    if (message) { input.reportValidity(); return false; }
    return true;
  }
  // The answer replaces this page, as a normal submit would (its own copy of this script runs again).
  function show(xhr) {
    var html = xhr.responseText;
    var url = xhr.responseURL ? new URL(xhr.responseURL) : null;
    document.open();
    document.write(html);
    document.close();
    if (url && url.origin === location.origin) history.replaceState(null, "", url.pathname);
  }
  function sendWithProgress(form, button) {
    var box = form.querySelector(".upload-progress"), bar = box && box.querySelector("progress");
    var percent = box && box.querySelector("[id$=percent]");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    if (box) box.hidden = false;
    xhr.upload.addEventListener("progress", function (ev) {
      if (!bar || !ev.lengthComputable) return;
      var p = Math.floor((ev.loaded / ev.total) * 100);
      bar.value = p;
      if (percent) percent.textContent = p + "%";
    });
    xhr.addEventListener("load", function () { show(xhr); });
    xhr.addEventListener("error", function () {
      // The network failed: nothing is lost on the page; the same form (same key) may be sent again.
      if (box) box.hidden = true;
      button.disabled = false;
      button.textContent = button.dataset.label;
      var status = document.getElementById("pow-status");
      if (status) status.textContent = document.documentElement.lang === "en"
        ? "Sending failed. Check your connection and press the button again."
        : "发送失败。请检查网络后再按一次按钮。";
    });
    xhr.send(new FormData(form));
  }
  function guardSubmit(form, whenReady) {
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (button && button.disabled) return;  // a second press: the first is being sent
      if (!checkFiles(form)) return;
      if (button) {
        button.dataset.label = button.textContent;
        button.disabled = true;
        if (button.dataset.sending) button.textContent = button.dataset.sending;
      }
      whenReady(function () {
        var files = form.querySelector("input[type=file]");
        if (window.XMLHttpRequest && window.FormData && files) sendWithProgress(form, button);
        else HTMLFormElement.prototype.submit.call(form);
      });
    });
  }
  function receipt() {
    var code = document.getElementById("receipt-code");
    if (!code) return;
    var actions = document.querySelector(".code-actions"), status = document.getElementById("copy-status");
    var copy = document.getElementById("copy-code"), print = document.getElementById("print-receipt");
    if (actions) actions.hidden = false;
    var digits = code.textContent.replace(/\s+/g, " ").trim();
    copy.addEventListener("click", function () {
      function done(ok) { status.textContent = ok ? copy.dataset.copied : copy.dataset.failed; }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(digits).then(function () { done(true); }, function () { done(false); });
      } else {
        var range = document.createRange();
        range.selectNodeContents(code);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        done(ok);
      }
    });
    print.addEventListener("click", function () { window.print(); });
    var copied = document.getElementById("copied");
    function warn(ev) { ev.preventDefault(); ev.returnValue = ""; }
    window.addEventListener("beforeunload", warn);
    copied.addEventListener("change", function () {
      if (copied.checked) window.removeEventListener("beforeunload", warn);
      else window.addEventListener("beforeunload", warn);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var report = document.getElementById("report-form");
    if (report) {
      var whenSolved = report.elements.pow_challenge && report.elements.pow_challenge.value
        ? solve(report) : function (then) { then(); };
      guardSubmit(report, whenSolved);
    }
    var others = document.querySelectorAll("form[enctype='multipart/form-data']:not(#report-form)");
    for (var j = 0; j < others.length; j++) guardSubmit(others[j], function (then) { then(); });
    var inputs = document.querySelectorAll("input[type=file]");
    for (var i = 0; i < inputs.length; i++) {
      inputs[i].addEventListener("change", function (ev) { checkFiles(ev.target.form); });
    }
    receipt();
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
