const cloud = require('wx-server-sdk')

cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })

// Calls another cloud function (login) and greets the caller by openid.
exports.main = async (event) => {
  const res = await cloud.callFunction({ name: 'login', data: { from: 'greet' } })
  const { OPENID, SOURCE } = cloud.getWXContext()
  return {
    message: `${event.greeting || 'Hello'}, ${OPENID}`,
    source: SOURCE,
    login: res.result,
  }
}
