package org.ctxrec.tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;

/**
 * A local Neo4j Community DBMS for ctxrec development and CI.
 *
 * <p>Starts an embedded DBMS with only the Bolt connector, bound to 127.0.0.1, auth enabled
 * (user {@code neo4j}, password set on every start through the system database), HTTP/HTTPS off,
 * and stops it cleanly on SIGTERM/SIGINT via a shutdown hook.
 *
 * <p>Options (each also readable from the environment; the flag wins):
 * <pre>
 *   --port N        NEO4J_PORT       Bolt port (default 7687)
 *   --data DIR      NEO4J_DATA       home/data folder (default tools/neo4j/data)
 *   --password PW   NEO4J_PASSWORD   password of user neo4j (default ctxrec-test-password, min 8 chars)
 *   --pagecache MB  NEO4J_PAGECACHE_MB  page cache size in MiB (default 256)
 * </pre>
 */
public final class LocalNeo4j {
    private static final String HOST = "127.0.0.1";
    private static final String USER = "neo4j";

    private LocalNeo4j() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        int port = Integer.parseInt(env.getOrDefault("NEO4J_PORT", "7687"));
        String data = env.getOrDefault("NEO4J_DATA", "tools/neo4j/data");
        String password = env.getOrDefault("NEO4J_PASSWORD", "ctxrec-test-password");
        long pagecacheMb = Long.parseLong(env.getOrDefault("NEO4J_PAGECACHE_MB", "256"));

        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--port" -> port = Integer.parseInt(need(args, ++i, a));
                case "--data" -> data = need(args, ++i, a);
                case "--password" -> password = need(args, ++i, a);
                case "--pagecache" -> pagecacheMb = Long.parseLong(need(args, ++i, a));
                case "-h", "--help" -> {
                    System.out.println("usage: LocalNeo4j [--port N] [--data DIR] [--password PW] [--pagecache MB]");
                    return;
                }
                default -> throw new IllegalArgumentException("unknown argument: " + a);
            }
        }
        if (password.length() < 8) {
            throw new IllegalArgumentException("password must have at least 8 characters (Neo4j 5 minimum)");
        }

        Path home = Path.of(data).toAbsolutePath().normalize();
        Files.createDirectories(home);
        long t0 = System.nanoTime();

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(HOST, port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress(HOST, port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(HttpsConnector.enabled, false)
                // No extra server-side-routing connector (it would listen on :7688).
                .setConfig(GraphDatabaseSettings.routing_enabled, false)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                // No anonymous usage reports ("udc") to the outside world.
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                .setConfig(GraphDatabaseInternalSettings.udc_network_enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(pagecacheMb))
                // Development store: keep transaction logs small.
                .setConfig(GraphDatabaseSettings.keep_logical_logs, "false")
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.logical_log_rotation_threshold, ByteUnit.mebiBytes(32))
                // Netty's graceful-shutdown quiet period (default 5 s, waited twice) makes SIGTERM slow.
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .build();
        long boltMs = (System.nanoTime() - t0) / 1_000_000;

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j shutting down");
            System.out.flush();
            try {
                dbms.shutdown();
            } finally {
                stopped.countDown();
                System.out.println("neo4j stopped");
                System.out.flush();
            }
        }, "ctxrec-neo4j-shutdown"));

        try {
            setPassword(dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME), password);
            // Make sure the default database is up before announcing readiness.
            dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME).executeTransactionally("RETURN 1");
        } catch (RuntimeException e) {
            System.err.println("neo4j startup failed: " + e);
            e.printStackTrace();
            System.exit(1);
        }

        long ms = (System.nanoTime() - t0) / 1_000_000;
        System.out.printf("neo4j %s ready on bolt://%s:%d (user %s, data %s; dbms up in %d ms, ready in %d ms)%n",
                org.neo4j.kernel.internal.Version.getNeo4jVersion(), HOST, port, USER, home, boltMs, ms);
        System.out.flush();
        stopped.await();
    }

    /** Sets the neo4j user's password (idempotent) and clears the change-required flag. */
    private static void setPassword(GraphDatabaseService system, String password) {
        try {
            system.executeTransactionally(
                    "ALTER USER " + USER + " SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED",
                    Map.of("pw", password));
        } catch (RuntimeException e) {
            // Neo4j refuses to "change" a password to the same value: that means it is already set.
            String msg = String.valueOf(e.getMessage()) + " " + String.valueOf(e.getCause());
            if (!msg.contains("Old password and new password cannot be the same")) {
                throw e;
            }
            system.executeTransactionally("ALTER USER " + USER + " SET PASSWORD CHANGE NOT REQUIRED");
        }
    }

    private static String need(String[] args, int i, String flag) {
        if (i >= args.length) {
            throw new IllegalArgumentException(flag + " needs a value");
        }
        return args[i];
    }
}
