const cloud = require('wx-server-sdk')

// API calls stay in the environment the function runs in.
cloud.init({
  env: cloud.DYNAMIC_CURRENT_ENV
})

/**
 * Returns the caller's openid to the mini-program.
 *
 * event holds the data passed by wx.cloud.callFunction, plus userInfo when a mini-program user calls.
 */
exports.main = (event, context) => {
  console.log('event', event)
  console.log('context', context)

  // WX Context: OPENID, APPID and UNIONID (when the unionid conditions are met) of the caller.
  const wxContext = cloud.getWXContext()

  return {
    event,
    openid: wxContext.OPENID,
    appid: wxContext.APPID,
    unionid: wxContext.UNIONID,
    env: wxContext.ENV,
  }
}
