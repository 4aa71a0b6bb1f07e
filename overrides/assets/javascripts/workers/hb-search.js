/* Search in the reader's language only.
 *
 * Material for MkDocs with mkdocs-static-i18n builds one search index for every language, so
 * a reader on /zh/ would also get English and Vietnamese results. overrides/main.html starts
 * this file as the search worker instead of Material's, with
 *
 *   ?worker=<Material's worker file>&lang=<the page's language>&scopes={"en":"","vi":"vi/",...}
 *
 * It loads Material's worker unchanged and, before that worker builds its index, drops the
 * documents whose location belongs to another language (the longest matching URL prefix
 * decides). Results, counts and suggestions then come from the reader's language alone.
 * Without usable parameters it changes nothing.
 *
 * Vietnamese readers often type without diacritics. On Vietnamese pages every document also
 * gets its title and text with the diacritics folded away (two more index fields, boosted like
 * the originals), so "cau hinh" finds "cấu hình". A query typed with diacritics is searched as
 * typed and folded: a page that has the exact words matches both and ranks first.
 */
(function () {
  "use strict"
  var params = new URL(self.location.href).searchParams
  var lang = params.get("lang")
  var scopes = {}
  try {
    scopes = JSON.parse(params.get("scopes") || "{}")
  } catch (err) {
    scopes = {}
  }
  var SETUP = 0 /* SearchMessageType.SETUP in Material's worker protocol */
  var QUERY = 2 /* SearchMessageType.QUERY */
  var FOLDS = lang === "vi" /* languages whose readers type without diacritics */

  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/\u0111/g, "d").replace(/\u0110/g, "D") /* đ, Đ */
  }

  function addFoldedFields(data) {
    var fields = data.config.fields || {}
    fields.folded_title = fields.title || { boost: 1 }
    fields.folded_text = fields.text || { boost: 1 }
    data.config.fields = fields
    data.docs.forEach(function (doc) {
      if (typeof doc.title === "string") doc.folded_title = fold(doc.title)
      if (typeof doc.text === "string") doc.folded_text = fold(doc.text)
    })
  }

  function languageOf(location) {
    var found = null
    var length = -1
    for (var code in scopes) {
      var prefix = scopes[code]
      if (location.indexOf(prefix) === 0 && prefix.length > length) {
        found = code
        length = prefix.length
      }
    }
    return found
  }

  if (lang && Object.prototype.hasOwnProperty.call(scopes, lang)) {
    var addEventListener = self.addEventListener.bind(self)
    self.addEventListener = function (type, listener, options) {
      if (type !== "message")
        return addEventListener(type, listener, options)
      return addEventListener(type, function (ev) {
        var message = ev.data
        if (message && message.type === SETUP && message.data && Array.isArray(message.data.docs)) {
          message.data.docs = message.data.docs.filter(function (doc) {
            return languageOf(doc.location) === lang
          })
          if (FOLDS && message.data.config) addFoldedFields(message.data)
          return listener.call(this, { data: message })
        }
        if (FOLDS && message && message.type === QUERY && typeof message.data === "string") {
          var folded = fold(message.data)
          if (folded !== message.data) message.data = message.data + " " + folded
          return listener.call(this, { data: message })
        }
        return listener.call(this, ev)
      }, options)
    }
  }
  importScripts(params.get("worker"))
})()
