// Cloud code for the LeanStorage conformance suite: the seed's examples, plus helpers.
const AV = require('leanengine')

AV.Cloud.define('averageStars', function (request, response) {
  var query = new AV.Query('Review')
  query.equalTo('movie', request.params.movie)
  query.find().then(function (results) {
    var sum = 0
    for (var i = 0; i < results.length; i++) {
      sum += results[i].get('stars')
    }
    response.success(sum / results.length)
  }).catch(function (error) {
    response.error('查询失败')
  })
})

AV.Cloud.define('customErrorCode', function (request, response) {
  response.error({ code: 123, message: 'custom error message' })
})

AV.Cloud.define('whoami', function (request) {
  return { username: request.currentUser ? request.currentUser.get('username') : null, hasToken: !!request.sessionToken }
})

AV.Cloud.define('makePost', function (request) {
  const post = new AV.Object('Post')
  post.set('title', request.params.title)
  return post.save()
})

AV.Cloud.define('readSecret', function (request) {
  // as the calling user: the ACL applies
  return new AV.Query('Secret').find({ sessionToken: request.sessionToken }).then((r) => r.length)
})

AV.Cloud.define('readSecretAsMaster', function () {
  return new AV.Query('Secret').find({ useMasterKey: true }).then((r) => r.length)
})

AV.Cloud.beforeSave('Review', function (request, response) {
  var comment = request.object.get('comment')
  if (comment) {
    if (comment.length > 140) {
      request.object.set('comment', comment.substring(0, 137) + '...')
    }
    response.success()
  } else {
    response.error('No comment!')
  }
})

AV.Cloud.beforeUpdate('Review', function (request, response) {
  if (request.object.updatedKeys.indexOf('comment') != -1) {
    if (request.object.get('comment').length <= 140) {
      response.success()
    } else {
      response.error('comment 长度不得超过 140 字符')
    }
  } else {
    response.success()
  }
})

AV.Cloud.afterSave('Comment', function (request) {
  var query = new AV.Query('Post')
  return query.get(request.object.get('post').id).then(function (post) {
    post.increment('comments')
    return post.save()
  })
})

AV.Cloud.beforeDelete('Album', function (request, response) {
  var query = new AV.Query('Photo')
  var album = AV.Object.createWithoutData('Album', request.object.id)
  query.equalTo('album', album)
  query.count().then(function (count) {
    if (count > 0) {
      response.error('Can\'t delete album if it still has photos.')
    } else {
      response.success()
    }
  }, function (error) {
    response.error('Error ' + error.code + ' : ' + error.message + ' when getting photo count.')
  })
})

AV.Cloud.afterDelete('Gallery', function (request) {
  var query = new AV.Query('Picture')
  var gallery = AV.Object.createWithoutData('Gallery', request.object.id)
  query.equalTo('gallery', gallery)
  return query.find().then(function (pictures) {
    return AV.Object.destroyAll(pictures)
  })
})

AV.Cloud.afterUpdate('Article', function (request) {
  // counts its runs in an object of a class without hooks
  const counter = AV.Object.createWithoutData('HookRuns', request.object.get('counterId'))
  counter.increment('n')
  return counter.save().then(() => {
    // saving the object handed to the hook must not fire afterUpdate again
    request.object.set('touched', true)
    return request.object.save()
  })
})

AV.Cloud.onLogin(function (request, response) {
  if (request.object.get('username') == 'noLogin') {
    response.error('Forbidden')
  } else {
    response.success()
  }
})

AV.Cloud.onVerified('email', function (request) {
  const note = new AV.Object('VerifiedNote')
  note.set('username', request.object.get('username'))
  return note.save()
})

AV.Cloud.onAuthData(function (request) {
  if (request.authData.weixin && request.authData.weixin.openid === 'blocked') {
    throw new AV.Cloud.Error('blocked openid')
  }
  return request.authData
})
