// stepup: passkey sign-in and registration for the challenge pages.
// Served by the challenge routes (no inline script, so a strict CSP holds).
(function () {
  "use strict";
  function toB64(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function fromB64(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); });
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    });
  }
  function show(message) {
    var box = document.getElementById("passkey-error");
    if (box) { box.textContent = message; box.hidden = false; }
  }
  var button = document.getElementById("passkey-button");
  if (!button) return;
  if (!window.PublicKeyCredential || !navigator.credentials) return; // stays hidden
  button.hidden = false;
  button.addEventListener("click", function () {
    var register = button.dataset.mode === "register";
    post(button.dataset.start, { confirmation: button.dataset.confirmation }).then(function (r) {
      if (!r.ok) throw new Error("start");
      return r.json();
    }).then(function (start) {
      var o = start.options.publicKey;
      o.challenge = fromB64(o.challenge);
      if (register) {
        o.user.id = fromB64(o.user.id);
        (o.excludeCredentials || []).forEach(function (c) { c.id = fromB64(c.id); });
        return navigator.credentials.create({ publicKey: o }).then(function (cred) {
          return post(button.dataset.finish, {
            ceremony: start.ceremony,
            name: button.dataset.name || "Passkey",
            credential: {
              id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
              response: {
                attestationObject: toB64(cred.response.attestationObject),
                clientDataJSON: toB64(cred.response.clientDataJSON)
              },
              extensions: cred.getClientExtensionResults()
            }
          });
        });
      }
      (o.allowCredentials || []).forEach(function (c) { c.id = fromB64(c.id); });
      return navigator.credentials.get({ publicKey: o }).then(function (cred) {
        return post(button.dataset.finish, {
          ceremony: start.ceremony,
          confirmation: button.dataset.confirmation,
          return_to: button.dataset.return,
          credential: {
            id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
            response: {
              authenticatorData: toB64(cred.response.authenticatorData),
              clientDataJSON: toB64(cred.response.clientDataJSON),
              signature: toB64(cred.response.signature),
              userHandle: cred.response.userHandle ? toB64(cred.response.userHandle) : null
            },
            extensions: cred.getClientExtensionResults()
          }
        });
      });
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.message || "finish");
        location.assign(body.return_to || button.dataset.return || "/");
      });
    }).catch(function () {
      // Point to other ways only where the page offers some.
      var others = document.querySelectorAll("main form").length > 0;
      // The page gives the texts in its language (data-failed-others,
      // data-failed); English if an older page gives none.
      show(others ? button.dataset.failedOthers || "That did not work. Try again, or use another way below."
                  : button.dataset.failed || "That did not work. Please try again.");
    });
  });
})();
