// Package e2e holds the console's end-to-end tests: a real headless Chromium (Debian's
// /usr/bin/chromium, driven with chromedp) against a real fn dev and a real fn serve started on
// free loopback ports. Tests only; screenshots go to $FN_TEST_ARTIFACTS (else a temp dir).
package e2e
