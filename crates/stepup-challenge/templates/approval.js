// The challenge page's wait for an approval on the user's other device:
// polls the approval's status every 2 seconds and submits the page's
// "continue" form once it is approved (the form works without this
// script: the button). Stops when the approval is refused on the other
// device or gone, saying so.
(function () {
  'use strict';
  var form = document.getElementById('approval-finish');
  if (!form || !window.fetch) {
    return;
  }
  var status = form.getAttribute('data-status');
  var waiting = document.getElementById('approval-waiting');
  var stopped = false;
  function poll() {
    if (stopped) {
      return;
    }
    fetch(status, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403 || response.status === 404) {
          // Logged out, or the route is gone: stop asking.
          return { state: 'gone' };
        }
        return response.ok ? response.json() : { state: 'pending' };
      })
      .then(function (body) {
        if (body.state === 'approved') {
          stopped = true;
          form.submit();
        } else if (body.state === 'gone' || body.state === 'refused') {
          stopped = true;
          if (waiting) {
            waiting.textContent = form.getAttribute('data-' + body.state);
          }
        } else {
          setTimeout(poll, 2000);
        }
      })
      .catch(function () {
        setTimeout(poll, 2000);
      });
  }
  setTimeout(poll, 1000);
})();
