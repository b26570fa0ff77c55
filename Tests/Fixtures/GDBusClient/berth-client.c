/* A berth client as a GLib program writes one: every proxy below comes from the C code that gdbus-codegen
 * generates from dbus/org.berth.Berth1.*.xml (namespace Berth, interface prefix org.berth.Berth1.). The test
 * (Tests/BerthdTests/DBusDocsTests.swift) generates, compiles and runs it against berthd on a private bus with the
 * services plugin. It prints one line per step and exits non-zero at the first step that fails.
 *
 * usage: berth-client BUS_ADDRESS SERVICE_NAME
 */
#include "berth-generated.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUS_NAME "org.berth.Berth1"

static void fail(const char *step, GError *error) {
    fprintf(stderr, "%s: %s\n", step, error ? error->message : "failed");
    exit(1);
}

struct wait {
    GMainLoop *loop;
    guint job_id;
    gchar *result;
};

static void on_job_removed(BerthManager *manager, guint id, const gchar *job, const gchar *plugin,
                           const gchar *result, gpointer data) {
    struct wait *w = data;
    (void)manager, (void)job, (void)plugin;
    if (id == w->job_id) {
        w->result = g_strdup(result);
        g_main_loop_quit(w->loop);
    }
}

static gboolean on_timeout(gpointer data) {
    g_main_loop_quit(((struct wait *)data)->loop);
    return G_SOURCE_REMOVE;
}

/* Waits for JobRemoved of job_id (the signal handler is connected before the call that made the job). */
static gchar *wait_for_job(struct wait *w, guint job_id) {
    w->job_id = job_id;
    if (w->result == NULL) {
        guint timer = g_timeout_add_seconds(20, on_timeout, w);
        g_main_loop_run(w->loop);
        if (w->result) g_source_remove(timer);
    }
    gchar *result = w->result;
    w->result = NULL;
    return result;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: berth-client BUS_ADDRESS SERVICE_NAME\n");
        return 2;
    }
    const char *service = argv[2];
    GError *error = NULL;
    GDBusConnection *bus = g_dbus_connection_new_for_address_sync(
        argv[1], G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, NULL, &error);
    if (!bus) fail("connect", error);

    BerthManager *manager = berth_manager_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
                                                         "/org/berth/Berth1", NULL, &error);
    if (!manager) fail("manager proxy", error);
    if (!berth_manager_call_ping_sync(manager, NULL, &error)) fail("Ping", error);
    printf("ping ok\n");
    printf("version %s api %u\n", berth_manager_get_version(manager), berth_manager_get_api_version(manager));

    GVariant *plugins = NULL;
    if (!berth_manager_call_list_plugins_sync(manager, &plugins, NULL, &error)) fail("ListPlugins", error);
    GVariantIter iter;
    const gchar *id, *state, *version, *path;
    g_variant_iter_init(&iter, plugins);
    while (g_variant_iter_next(&iter, "(&s&s&s&o)", &id, &version, &state, &path))
        printf("plugin %s %s %s\n", id, state, path);
    g_variant_unref(plugins);

    BerthServices *services = berth_services_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
                                                            "/org/berth/Berth1/services", NULL, &error);
    if (!services) fail("services proxy", error);

    /* A named error comes back as GError with the remote D-Bus error name. */
    guint job_id = 0;
    gchar *job = NULL;
    if (berth_services_call_start_sync(services, "no-such-service", &job_id, &job, NULL, &error))
        fail("Start of an unknown service succeeded", NULL);
    gchar *remote = g_dbus_error_get_remote_error(error);
    printf("error %s\n", remote ? remote : "(none)");
    g_free(remote);
    g_clear_error(&error);

    gchar *spec = g_strdup_printf("exec: [sleep, \"300\"]\n");
    if (!berth_services_call_define_sync(services, service, spec, NULL, &error)) fail("Define", error);
    g_free(spec);

    struct wait w = {g_main_loop_new(NULL, FALSE), 0, NULL};
    g_signal_connect(manager, "job-removed", G_CALLBACK(on_job_removed), &w);
    if (!berth_services_call_start_sync(services, service, &job_id, &job, NULL, &error)) fail("Start", error);
    gchar *result = wait_for_job(&w, job_id);
    printf("start job %u %s\n", job_id, result ? result : "(no JobRemoved within 20 s)");
    if (!result || strcmp(result, "done") != 0) return 1;
    g_free(result);
    g_free(job);

    GVariant *list = NULL;
    if (!berth_services_call_list_sync(services, &list, NULL, &error)) fail("List", error);
    g_variant_iter_init(&iter, list);
    const gchar *name, *sub, *object;
    while (g_variant_iter_next(&iter, "(&s&s&s&o)", &name, &state, &sub, &object)) {
        if (strcmp(name, service) != 0) continue;
        BerthService *one = berth_service_proxy_new_sync(bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, object, NULL,
                                                         &error);
        if (!one) fail("service proxy", error);
        printf("service %s %s pid %u\n", name, berth_service_get_state(one), berth_service_get_main_pid(one));
        g_object_unref(one);
    }
    g_variant_unref(list);

    if (!berth_services_call_stop_sync(services, service, &job_id, &job, NULL, &error)) fail("Stop", error);
    result = wait_for_job(&w, job_id);
    printf("stop job %u %s\n", job_id, result ? result : "(no JobRemoved within 20 s)");
    if (!result || strcmp(result, "done") != 0) return 1;
    g_free(result);
    g_free(job);

    g_object_unref(services);
    g_object_unref(manager);
    g_object_unref(bus);
    g_main_loop_unref(w.loop);
    return 0;
}
