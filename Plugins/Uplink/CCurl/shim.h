// libcurl for the uplink plugin (Debian libcurl4-openssl-dev). curl_easy_setopt and curl_easy_getinfo are variadic,
// which Swift cannot call: one typed wrapper per kind of argument.
#ifndef BERTH_CCURL_H
#define BERTH_CCURL_H
#include <curl/curl.h>

static inline CURLcode berth_curl_setopt_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode berth_curl_setopt_pointer(CURL *curl, CURLoption option, const void *value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode berth_curl_response_code(CURL *curl, long *code) {
    return curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
}
static inline size_t berth_curl_discard(char *data, size_t size, size_t count, void *user) {
    (void)data;
    (void)user;
    return size * count;
}
/// The response body is not needed (the status code is the answer): read and dropped rather than printed.
static inline CURLcode berth_curl_discard_body(CURL *curl) {
    return curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, berth_curl_discard);
}
#endif
