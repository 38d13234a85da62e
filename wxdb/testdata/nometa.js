// Test-only preload: off Tencent Cloud the SDK probes metadata.tencentyun.com before every
// request (the failure is not cached); answer that lookup at once instead of through DNS.
const dns = require('dns')
const lookup = dns.lookup
dns.lookup = function (host, opts, cb) {
  if (host === 'metadata.tencentyun.com') {
    const done = typeof opts === 'function' ? opts : cb
    const err = Object.assign(new Error('getaddrinfo ENOTFOUND ' + host), { code: 'ENOTFOUND', hostname: host })
    return process.nextTick(done, err)
  }
  return lookup.apply(this, arguments)
}
