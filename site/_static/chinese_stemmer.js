// Sphinx 9's search data for Chinese ends with `window.Stemmer = ChineseStemmer` but ships no
// ChineseStemmer: the index stems Latin words with the English stemmer (sphinx/search/zh.py),
// so the query must be stemmed the same way. This file loads before language_data.js.
window.ChineseStemmer = function () { return new EnglishStemmer(); };
