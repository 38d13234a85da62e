const AV = require('leanengine')

AV.Cloud.define('hello', function (request) {
  return 'Hello world!'
})

// Average rating of a movie, computed on the server so that clients never download every review.
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

// A review's comment is truncated to 140 characters before it is saved.
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

// A new comment increments its post's comment count.
AV.Cloud.afterSave('Comment', function (request) {
  var query = new AV.Query('Post')
  return query.get(request.object.get('post').id).then(function (post) {
    post.increment('comments')
    return post.save()
  })
})

// An album that still has photos cannot be deleted.
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

// Users on the block list cannot log in.
AV.Cloud.onLogin(function (request, response) {
  if (request.object.get('username') == 'noLogin') {
    response.error('Forbidden')
  } else {
    response.success()
  }
})

// Called by the log_timer timer in fn.yaml.
AV.Cloud.define('log_timer', function (request, response) {
  console.log('Log in timer.')
  return response.success()
})
